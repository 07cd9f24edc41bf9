// Server: version, thread loads and the object counts of getStatistic, read every 2 s.

import * as api from '../api.js';
import { h, replace } from '../dom.js';
import { POLL_MS } from '../api.js';

export const serverView = { title: 'Server', mount: mountServer };

function mountServer(root) {
  const version = h('dl', { class: 'kv', id: 'server-version' });
  const threads = h('tbody');
  const stats = h('dl', { class: 'kv', id: 'server-statistic' });
  const error = h('p', { class: 'banner error', role: 'alert', hidden: true });
  root.append(
    h('header', { class: 'view-head' }, h('div', null, h('h1', null, 'Server'),
      h('p', { class: 'muted' }, 'Build, thread load and live object counts.'))),
    error,
    h('div', { class: 'grid-2' },
      h('section', { class: 'card' }, h('h2', null, 'Version'), version),
      h('section', { class: 'card' }, h('h2', null, 'Threads'),
        h('table', { class: 'table compact', id: 'server-threads' },
          h('thead', null, h('tr', null, h('th', null, 'Thread'), h('th', { class: 'num' }, 'Load'),
            h('th', { class: 'num' }, 'Delay'), h('th', { class: 'num' }, 'fds'))),
          threads))),
    h('section', { class: 'card' }, h('h2', null, 'Objects (getStatistic)'), stats));

  const kv = (obj) => Object.entries(obj || {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => [h('dt', null, k),
      h('dd', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v))]);
  api.call('version').then((b) => replace(version, kv(b.data)),
    (e) => replace(version, h('dd', { class: 'muted' }, e.message)));

  let stopped = false;
  async function refresh() {
    const [load, stat] = await Promise.allSettled([api.call('getThreadsLoad'),
      api.call('getStatistic')]);
    if (stopped) return;
    const failed = [load, stat].filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    error.hidden = failed.length === 0;
    error.textContent = failed.join('; ');
    if (load.status === 'fulfilled') {
      replace(threads, (load.value.data || []).map((t) => h('tr', null,
        h('td', null, String(t.name ?? '')),
        h('td', { class: 'num' }, meter(Number(t.load) || 0), `${Number(t.load) || 0}%`),
        h('td', { class: 'num mono' }, `${t.delay ?? 0} ms`),
        h('td', { class: 'num mono' }, String(t.fd_count ?? '')))));
    }
    if (stat.status === 'fulfilled') replace(stats, kv(stat.value.data));
  }
  refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** A small bar for a percentage (its width set through the CSSOM, which the CSP allows). */
function meter(percent) {
  const bar = h('span', { class: 'meter-bar' });
  bar.style.setProperty('--v', `${Math.max(0, Math.min(100, percent))}%`);
  return h('span', { class: 'meter' }, bar);
}
