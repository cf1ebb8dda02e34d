"""`inferencehub status`: a live, full-terminal view of one hub, redrawn from GET /v1/status.

`render` is pure (a snapshot dict and a screen size in, a rich renderable out) so a frame can be
checked at 80x24 without a server or a terminal; `status_live.run_live` owns the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Group, JustifyMethod, RenderableType
from rich.rule import Rule
from rich.styled import Styled
from rich.table import Table
from rich.text import Text

from inferencehub.protocol.routing import version_order

BLOCKS = "▁▂▃▄▅▆▇█"
WIDE = 120  # from this width: since-start totals, last exits, version errors
MAX_SPARK = 60  # one block per second of the last minute
GAP = 2  # columns between table cells: padding (0, 1) on both neighbours
STATE_STYLES = {"running": "green", "READY": "green", "failed": "bold red", "FAILED": "bold red"}
Row = list[Text]
Columns = list[tuple[str, JustifyMethod]]


def sparkline(values: Sequence[float], width: int) -> str:
    """`values` as blocks scaled to their peak (0 is the lowest block); longer series are
    averaged down to `width` so a narrow terminal still shows the whole minute."""
    if width <= 0 or not values:
        return ""
    if len(values) > width:
        n = len(values)
        chunks = [values[i * n // width : (i + 1) * n // width] for i in range(width)]
        values = [sum(chunk) / len(chunk) for chunk in chunks]
    peak = max(values)
    if peak <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[0] if v <= 0 else BLOCKS[max(1, math.ceil(v / peak * 7))] for v in values)


def describe_canary(rollout: dict[str, Any]) -> str:
    """A rollout in one line: where it stands, or how it ended and why."""
    head = f"canary {rollout.get('version', '-')} vs {rollout.get('baseline', '-')}: "
    state = str(rollout.get("state", "-"))
    if state != "RUNNING":
        return head + f"{state.lower().replace('_', ' ')}: {rollout.get('reason', '')}"
    try:
        return head + (
            f"at {rollout['percent']:g} % (step {rollout['step'] + 1}/{len(rollout['ramp'])}, "
            f"{rollout['every_s']:g} s each; budgets: errors <= {rollout['max_error_rate']:.1%},"
            f" p99 <= x{rollout['max_p99_ratio']:g})"
        )
    except (KeyError, TypeError, ValueError):  # a server that sends fewer fields
        return head + f"at {rollout.get('percent', '-')} %"


def render(
    snapshot: dict[str, Any] | None,
    error: str | None = None,
    *,
    url: str = "",
    width: int = 80,
    height: int | None = None,
    footer: str | None = None,
) -> RenderableType:
    """One frame. With `height`, parts are compacted or cut ("… N more") to fit the screen and
    the footer sits on the last line; without it (--once) everything is shown."""
    snapshot_url = (snapshot or {}).get("url") or url
    top: list[RenderableType] = [_header(snapshot, snapshot_url)]
    if error:
        top.append(Text(error, style="bold red", no_wrap=True, overflow="ellipsis"))
    bottom = [Text(footer, style="dim", no_wrap=True, overflow="ellipsis")] if footer else []
    room = None if height is None else max(0, height - len(top) - len(bottom))
    if snapshot is None:
        body: list[RenderableType] = [] if error else [Text("waiting for the server…", "dim")]
        used = len(body)
    else:
        body, used = _body(snapshot, width, room)
        if error:  # the last data, dimmed: still useful, clearly not live
            body = [Styled(Group(*body), "dim")]
    if room is not None and bottom and room > used:
        body.append(Text("\n" * (room - used - 1)))
    return Group(*top, *body, *bottom)


def _header(snapshot: dict[str, Any] | None, url: str) -> Text:
    header = Text.assemble(("InferenceHub", "bold"), " ")
    if snapshot is not None:
        uptime = _hub_uptime(snapshot)
        header.append(f"{snapshot.get('version', '-')}  ")
        header.append(url, "cyan")
        header.append(f"  up {_duration(uptime)}  ")
        if snapshot.get("worker_serving"):
            header.append("● worker serving", "green")
        else:
            header.append("● worker not serving", "bold red")
    else:
        header.append(url, "cyan")
    header.no_wrap, header.overflow = True, "ellipsis"
    return header


def _hub_uptime(snapshot: dict[str, Any]) -> float | None:
    """The supervisor's uptime: the hub's age, which outlives a restarted gateway."""
    for p in snapshot.get("processes") or []:
        if p.get("role") == "supervisor" and p.get("uptime_s") is not None:
            return float(p["uptime_s"])
    return snapshot.get("uptime_s")


def _body(
    snapshot: dict[str, Any], width: int, room: int | None
) -> tuple[list[RenderableType], int]:
    """Sections in order of importance; with `room`, the least important parts give way first:
    the door becomes one line, then the canary/shadow notes go, then rows are cut."""
    wide = width >= WIDE
    processes = _process_rows(snapshot, wide)
    models, notes = _model_rows(snapshot, wide)
    traffic = _sorted_traffic(snapshot.get("traffic") or [])
    door = _door_parts(snapshot.get("door")) + _worker_parts(snapshot.get("workers"))
    door_lines = _pack(door, width)
    compact_door, show_notes = False, True
    caps = [len(models), len(traffic)]

    def height() -> int:
        sections = 2 + max(1, len(processes))
        sections += 1 if compact_door else 1 + len(door_lines)
        sections += len(notes) if show_notes else 0
        return sections + sum(2 + cap if cap else 2 for cap in caps)

    if room is not None and height() > room:
        compact_door = True
    if room is not None and height() > room:
        show_notes = False
    if room is not None and height() > room:
        rows_room = max(0, room - (height() - sum(caps)))
        caps[0] = min(len(models), max(rows_room // 2, rows_room - len(traffic)))
        caps[1] = min(len(traffic), rows_room - caps[0])
    fit = room is not None
    body: list[RenderableType] = [_rule("processes")]
    body += [_table(PROCESS_COLUMNS[: len(processes[0])], processes, width)] if processes else []
    body += [] if processes else [Text("no process data", "dim")]
    body += [_rule("models"), *_cut(lambda rows: _models_table(rows, width), models, caps[0])]
    if show_notes:
        body += [Text(n, no_wrap=fit, overflow="ellipsis" if fit else "fold") for n in notes]
    body += [_rule("traffic (last 10 s)")]
    body += _cut(lambda rows: _traffic_table(rows, width), traffic, caps[1], "no requests yet")
    if compact_door:
        body.append(Text("door: " + " · ".join(door), no_wrap=True, overflow="ellipsis"))
    else:
        body += [_rule("door"), *(Text(line, no_wrap=fit) for line in door_lines)]
    return body, height()


def _cut(
    table: Callable[[list[Any]], Table], rows: list[Any], cap: int, empty: str = "no models"
) -> list[RenderableType]:
    """The table with at most `cap` lines of rows, the last of them "… N more" if cut."""
    if not rows:
        return [Text(empty, "dim")]
    if cap >= len(rows):
        return [table(rows)]
    shown = rows[: max(0, cap - 1)]
    more = Text(f"… {len(rows) - len(shown)} more", "dim")
    return [table(shown), more] if shown else [more]


def _rule(title: str) -> Rule:
    return Rule(Text(title, "bold"), align="left", style="dim")


def _table(columns: Columns, rows: Sequence[Row], width: int) -> Table:
    """Cells never wrap: every row is one line, and a column over its share ends with "…"."""
    widths = _widths(columns, rows)
    overflow = sum(widths) + GAP * (len(widths) - 1) - width
    if overflow > 0:  # the widest column gives way, keeping the numbers whole
        widest = widths.index(max(widths))
        widths[widest] = max(3, widths[widest] - overflow)
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold", expand=False)
    for (name, justify), column_width in zip(columns, widths, strict=True):
        table.add_column(
            name, justify=justify, no_wrap=True, overflow="ellipsis", max_width=column_width
        )
    for row in rows:
        table.add_row(*row)
    return table


def _widths(columns: Columns, rows: Sequence[Row]) -> list[int]:
    return [
        max(cell_len(name), *(row[i].cell_len for row in rows))
        for i, (name, _) in enumerate(columns)
    ]


PROCESS_COLUMNS: Columns = [
    ("role", "left"), ("pid", "right"), ("state", "left"), ("uptime", "right"),
    ("restarts", "right"), ("RSS", "right"), ("CPU", "right"), ("last exit", "left"),
]  # fmt: skip


def _process_rows(snapshot: dict[str, Any], wide: bool) -> list[Row]:
    rows = []
    for p in snapshot.get("processes") or []:
        restarts = p.get("restarts")
        row = [
            Text(str(p.get("role", "-"))),
            _cell(p.get("pid")),
            Text(str(p.get("state", "-")), STATE_STYLES.get(str(p.get("state")), "yellow")),
            Text(_duration(p.get("uptime_s"))),
            Text(str(restarts if restarts is not None else "-"), "yellow" if restarts else ""),
            Text(_bytes(p.get("rss_bytes"))),
            Text(_number(p.get("cpu_percent"), "{:.0f}%")),
        ]
        rows.append([*row, Text(p.get("last_exit") or "-")] if wide else row)
    return rows


MODEL_COLUMNS: Columns = [
    ("model", "left"), ("version", "left"), ("state", "left"), ("provider", "left"),
    ("routing", "left"), ("error", "left"),
]  # fmt: skip


def _model_rows(snapshot: dict[str, Any], wide: bool) -> tuple[list[Row], list[str]]:
    """One row per version (the default marked *), and one note per canary or shadow."""
    rows, notes = [], []
    for model in snapshot.get("models") or []:
        name, routing = str(model.get("name", "-")), model.get("routing") or {}
        for i, v in enumerate(model.get("versions") or []):
            version = str(v.get("version", "-"))
            default = " *" if version == model.get("default_version") else ""
            state = str(v.get("state", "-"))
            row = [
                Text(name if i == 0 else ""),
                Text(version + default),
                Text(state, STATE_STYLES.get(state, "yellow")),
                Text(str(v.get("provider") or "-").removesuffix("ExecutionProvider")),
                Text(", ".join(_route(routing, version, model.get("default_version")))),
            ]
            rows.append([*row, Text(v.get("error") or "", "red")] if wide else row)
        if routing.get("canary"):
            notes.append(f"{name}: {describe_canary(routing['canary'])}")
        shadow = routing.get("shadow")
        if shadow:
            fraction = _number(shadow.get("fraction"), "{:.1%}")
            notes.append(f"{name}: {fraction} mirrored to {shadow.get('version', '-')}")
    return rows, notes


def _route(routing: dict[str, Any], version: str, default: str | None) -> list[str]:
    """How requests reach `version`: split weight, labels, default, shadow, canary."""
    split = routing.get("split") or {}
    route = [f"{split[version]:g}%"] if version in split else []
    route += [label for label, target in (routing.get("labels") or {}).items() if target == version]
    if not split and version == default:
        route.append("default")
    shadow, canary = routing.get("shadow") or {}, routing.get("canary") or {}
    if shadow.get("version") == version:
        route.append(f"shadow {_number(shadow.get('fraction'), '{:.0%}')}")
    if canary.get("version") == version:
        if "canary" in route:  # the rollout's own label: said once, with where it stands
            route.remove("canary")
        state = str(canary.get("state", "-"))
        if state == "RUNNING":
            step, ramp = canary.get("step"), canary.get("ramp") or []
            route.append(f"canary step {step + 1}/{len(ramp)}" if step is not None else "canary")
        else:
            route.append(f"canary {state.lower().replace('_', ' ')}")
    return route


def _models_table(rows: list[Row], width: int) -> Table:
    return _table(MODEL_COLUMNS[: len(rows[0])], rows, width)


TRAFFIC_COLUMNS: Columns = [
    ("model", "left"), ("ver", "left"), ("req/s", "right"), ("p50 ms", "right"),
    ("p95", "right"), ("p99", "right"), ("err", "right"), ("batch", "right"), ("queue", "right"),
]  # fmt: skip
WIDE_TRAFFIC_COLUMNS: Columns = [("requests", "right"), ("errors", "right")]


def _traffic_table(traffic: list[dict[str, Any]], width: int) -> Table:
    """Last 10 s per version, and a sparkline of the last minute as wide as the screen allows."""
    wide = width >= WIDE
    columns = TRAFFIC_COLUMNS + (WIDE_TRAFFIC_COLUMNS if wide else [])
    rows = []
    for t in traffic:
        idle = t.get("requests_per_s") == 0  # nothing in the last 10 s to measure
        recent = {} if idle else t.get("recent_latency") or {}
        row = [
            Text(str(t.get("name", "-")), overflow="ellipsis"),
            Text(str(t.get("version", "-"))),
            Text(_number(t.get("requests_per_s"), "{:.1f}")),
            Text(_ms(recent.get("p50_ms"))),
            Text(_ms(recent.get("p95_ms"))),
            Text(_ms(recent.get("p99_ms"))),
            _error_cell(None if idle else t.get("recent_error_rate")),
            Text(_number(None if idle else t.get("avg_batch_size"), "{:.1f}")),
            _cell(t.get("queue_depth")),
        ]
        if wide:
            row += [_cell(t.get("requests")), _cell(t.get("errors"))]
        rows.append(row)
    widths = _widths(columns, rows)
    widths[0] = min(widths[0], max(8, width // 5))
    spark = min(MAX_SPARK, width - sum(widths) - GAP * len(widths))
    if spark >= 4:
        columns = [*columns, ("last 60 s" if spark >= 9 else "60 s", "left")]
        for row, t in zip(rows, traffic, strict=True):
            row.append(Text(sparkline(t.get("requests_history") or [], spark), "cyan"))
    return _table(columns, rows, width)


def _sorted_traffic(traffic: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(traffic, key=lambda t: (str(t.get("name")), version_order(str(t.get("version")))))


def _door_parts(door: dict[str, Any] | None) -> list[str]:
    if not door:
        return ["-"]

    def count(key: str) -> str:
        return _cell(door.get(key)).plain

    parts = [f"auth {'on' if door.get('auth') else 'off'}", f"{count('keys')} active keys"]
    if door.get("rate_limit_per_s"):
        parts.append(f"rate limit {door['rate_limit_per_s']:g}/s")
    return [
        *parts,
        f"{count('rate_limited')} rate-limited",
        f"{count('unauthenticated')} unauthenticated refused",
        f"in flight {count('in_flight')}/{count('max_in_flight')}",
    ]


def _worker_parts(workers: list[dict[str, Any]] | None) -> list[str]:
    """Each worker's load, when there is more than the one local worker to tell apart."""
    if not workers or (
        len(workers) == 1 and str(workers[0].get("address", "")).startswith("unix:")
    ):
        return []
    return [
        f"{w.get('name', '-')} {'up' if w.get('serving') else 'DOWN'} "
        f"{_cell(w.get('outstanding')).plain} out"
        for w in workers
    ]


def _pack(parts: list[str], width: int) -> list[str]:
    """Parts joined with " · " into as few lines as fit `width`."""
    lines: list[str] = []
    for part in parts:
        if lines and cell_len(lines[-1]) + 3 + cell_len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines


def _cell(value: Any) -> Text:
    return Text("-" if value is None else str(value))


def _error_cell(rate: float | None) -> Text:
    return Text(_number(rate, "{:.1%}"), "red" if rate else "")


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _ms(value: float | None) -> str:
    return _number(value, "{:.0f}" if value is not None and value >= 100 else "{:.1f}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / (1 << 30):.1f}G" if value >= 1 << 30 else f"{value / (1 << 20):.0f}M"
