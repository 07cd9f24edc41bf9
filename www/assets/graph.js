// A small live line graph on a canvas: the last `capacity` samples, an area under the line, a
// dashed grid with a "nice" top value, the latest value as a dot. Colours come from the CSS
// variables so it follows the light or dark theme.

/** A round number ≥ `v` (1, 2, 2.5 or 5 times a power of ten). */
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

export class Graph {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{format: (v: number) => string, color: string, capacity?: number}} options
   *   `color` names a CSS variable (`--accent`).
   */
  constructor(canvas, { format, color, capacity = 60 }) {
    this.canvas = canvas;
    this.format = format;
    this.color = color;
    this.capacity = capacity;
    this.samples = [];
  }

  /** Replaces the samples (the console keeps them across views). */
  set(samples) {
    this.samples = samples.slice(-this.capacity);
    this.draw();
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const css = getComputedStyle(canvas);
    const line = css.getPropertyValue(this.color).trim() || '#3b82f6';
    const grid = css.getPropertyValue('--grid').trim() || 'rgba(128,128,128,.2)';
    const muted = css.getPropertyValue('--muted').trim() || '#888';
    const font = `11px ${css.getPropertyValue('--font-mono').trim() || 'monospace'}`;

    const top = 14;
    const bottom = height - 4;
    const left = 2;
    const right = width - 2;
    const max = niceCeil(Math.max(0, ...this.samples));
    const y = (v) => bottom - ((bottom - top) * v) / max;
    const step = (right - left) / Math.max(1, this.capacity - 1);
    const x0 = right - step * (this.samples.length - 1);

    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 4]);
    for (const f of [0.5, 1]) {
      const gy = Math.round(y(max * f)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, gy);
      ctx.lineTo(right, gy);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.fillStyle = muted;
    ctx.font = font;
    ctx.textBaseline = 'bottom';
    ctx.fillText(this.format(max), left + 2, y(max) - 2);

    if (this.samples.length === 0) return;
    ctx.beginPath();
    this.samples.forEach((v, i) => {
      const px = x0 + i * step;
      if (i === 0) ctx.moveTo(px, y(v));
      else ctx.lineTo(px, y(v));
    });
    ctx.strokeStyle = line;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(x0 + (this.samples.length - 1) * step, bottom);
    ctx.lineTo(x0, bottom);
    ctx.closePath();
    const fill = ctx.createLinearGradient(0, top, 0, bottom);
    fill.addColorStop(0, withAlpha(line, 0.28));
    fill.addColorStop(1, withAlpha(line, 0));
    ctx.fillStyle = fill;
    ctx.fill();
    const last = this.samples[this.samples.length - 1];
    ctx.beginPath();
    ctx.arc(right - 0.5, y(last), 3, 0, 2 * Math.PI);
    ctx.fillStyle = line;
    ctx.fill();
  }
}

/** `#rrggbb` with an alpha, as rgba(); other colour forms are returned unchanged. */
function withAlpha(color, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return color;
  const [r, g, b] = m.slice(1).map((hex) => parseInt(hex, 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}
