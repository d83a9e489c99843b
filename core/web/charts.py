"""Server-rendered SVG charts: no JavaScript, readable by screen readers (title, desc, table alternative)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

#: Colours with at least 3:1 contrast against white (WCAG 1.4.11, non-text contrast).
SERIES_COLOURS = {"done": "#1b6e3c", "needs_review": "#1d4ed8", "exceptions": "#b42318"}


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    names: Mapping[str, str],
    width: int = 640,
    height: int = 180,
) -> Markup:
    """A stacked bar chart, one bar per label; ``series`` maps a key to one value per label."""
    n = max(len(labels), 1)
    top, bottom, left = 10, 24, 36
    plot_h = height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max([*totals, 1])
    slot = (width - left) / n
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" stroke="#4b5563"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="11" fill="#1f2937">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="11" fill="#1f2937">0</text>',
    ]
    for i, lab in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y: float = top + plot_h
        tip = ", ".join(f"{names.get(k, k)} {vals[i]}" for k, vals in series.items())
        parts.append(f"<g><title>{escape(lab)}: {escape(tip)}</title>")
        for key, values in series.items():
            h = plot_h * values[i] / peak
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{SERIES_COLOURS.get(key, "#374151")}"/>'
            )
        parts.append("</g>")
        if i % max(n // 6, 1) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="11" '
                f'fill="#1f2937">{escape(lab)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value interpolated is escaped or numeric


def month_bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    unit: str = "",
    decimals: int = 1,
    width: int = 480,
    height: int = 150,
) -> Markup:
    """One bar per month; a month without a figure (None) is left empty and says so in its tooltip."""
    n = max(len(labels), 1)
    top, bottom, left = 10, 24, 44
    plot_h = height - top - bottom
    known = [v for v in values if v is not None]
    peak = max([*known, 0.0]) or 1.0
    floor = min([*known, 0.0])
    span = peak - floor or 1.0
    zero_y = top + plot_h * peak / span
    slot = (width - left) / n
    bar_w = max(slot * 0.6, 1)

    def fmt(v: float) -> str:
        return f"{v:.{decimals}f}".replace(".", ",")

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart month-chart" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{zero_y:.1f}" x2="{width}" y2="{zero_y:.1f}" stroke="#4b5563"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="11" fill="#1f2937">{fmt(peak)}</text>',
        f'<text x="{left - 4}" y="{zero_y:.1f}" text-anchor="end" font-size="11" fill="#1f2937">0</text>',
    ]
    for i, lab in enumerate(labels):
        v = values[i]
        x = left + i * slot + (slot - bar_w) / 2
        tip = f"{lab}: {fmt(v)} {unit}".strip() if v is not None else f"{lab}: –"
        parts.append(f"<g><title>{escape(tip)}</title>")
        if v is not None and v != 0:
            h = plot_h * abs(v) / span
            y = zero_y - h if v > 0 else zero_y
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="#1d4ed8"/>')
        else:
            # An invisible target so the month's tooltip still shows.
            parts.append(
                f'<rect x="{x:.1f}" y="{top}" width="{bar_w:.1f}" height="{plot_h}" fill="#ffffff" fill-opacity="0"/>'
            )
        parts.append("</g>")
        if i % max(n // 6, 1) == 0 or i == n - 1:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="11" '
                f'fill="#1f2937">{escape(lab)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value interpolated is escaped or numeric
