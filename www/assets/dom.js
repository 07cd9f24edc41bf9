// Building the page from data. Everything that came from the server (stream names, peer
// addresses, config values) goes in through textContent or an attribute, never as markup: a
// stream may be named `<img onerror=…>` by whoever publishes it.

/**
 * An element: `h('td', { class: 'num', title: t }, child, 'text', …)`. Strings become text
 * nodes; `on<event>` props become listeners; `text` sets textContent; `value`, `checked`,
 * `disabled`, `hidden` and other non-string props are set as properties.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (typeof value !== 'string' && key in el) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends nodes and strings (as text) to `el`, skipping null, undefined and false. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** `12.3 Mbit/s` for a rate in bytes per second. */
export function bitrate(bytesPerSecond) {
  const bits = (Number(bytesPerSecond) || 0) * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(bits >= 1e8 ? 0 : 1)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(0)} kbit/s`;
  return `${bits.toFixed(0)} bit/s`;
}

/** `1.2 GB` for a byte count. */
export function bytes(n) {
  const v = Number(n) || 0;
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let x = v;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i += 1;
  }
  return `${i === 0 ? x : x.toFixed(x >= 100 ? 0 : 1)} ${units[i]}`;
}

/** `2d 3h`, `4h 05m`, `3m 07s`, `12s` for a duration in seconds. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${two(m)}m`;
  if (m > 0) return `${m}m ${two(sec)}s`;
  return `${sec}s`;
}

/** A path segment or several (`a/b`) percent-encoded one segment at a time. */
export function encodePath(path) {
  return String(path).split('/').map(encodeURIComponent).join('/');
}

/** A short-lived note in the corner: `kind` is 'ok' or 'error'. */
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const note = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    message);
  box.append(note);
  setTimeout(() => note.classList.add('leaving'), 4000);
  setTimeout(() => note.remove(), 4400);
}
