// Sessions: every connection the session table knows (publishers and viewers of every
// protocol), read every 2 s, filterable, each with a Kick button (kick_session).

import * as api from '../api.js';
import { h, replace, toast } from '../dom.js';
import { POLL_MS } from '../api.js';

export const sessionsView = { title: 'Sessions', mount };

function mount(root) {
  const summary = h('p', { class: 'muted' }, 'Reading…');
  const filter = h('input', { type: 'search', class: 'input', id: 'sessions-filter',
    placeholder: 'Filter by type, address or id', 'aria-label': 'Filter sessions' });
  const tbody = h('tbody');
  const table = h('table', { class: 'table', id: 'sessions-table' },
    h('thead', null, h('tr', null,
      h('th', null, 'ID'), h('th', null, 'Type'), h('th', null, 'Peer'),
      h('th', null, 'Local'), h('th', null, 'Identifier'), h('th', { class: 'num' }, ''))),
    tbody);
  const empty = h('div', { class: 'empty', hidden: true }, h('h2', null, 'No sessions'),
    h('p', { class: 'muted' }, 'Publishers and viewers appear here while they are connected.'));
  const error = h('p', { class: 'banner error', role: 'alert', hidden: true });
  root.append(
    h('header', { class: 'view-head' }, h('div', null, h('h1', null, 'Sessions'), summary),
      h('div', { class: 'head-tools' }, filter)),
    error,
    h('section', { class: 'card table-card' }, h('div', { class: 'table-scroll' }, table), empty));

  let sessions = [];
  let stopped = false;
  const kicking = new Set();

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const shown = sessions.filter((s) => !needle || [s.id, s.type, s.identifier,
      `${s.peer_ip}:${s.peer_port}`, `${s.local_ip}:${s.local_port}`]
      .some((v) => String(v ?? '').toLowerCase().includes(needle)));
    replace(tbody, shown.map((s) => h('tr', { dataset: { id: String(s.id) } },
      h('td', { class: 'mono' }, String(s.id)),
      h('td', null, h('span', { class: 'badge' }, String(s.type ?? ''))),
      h('td', { class: 'mono' }, `${s.peer_ip}:${s.peer_port}`),
      h('td', { class: 'mono' }, `${s.local_ip}:${s.local_port}`),
      h('td', { class: 'mono muted' }, String(s.identifier ?? '')),
      h('td', { class: 'num' }, h('button', {
        class: 'button danger small kick', type: 'button', disabled: kicking.has(String(s.id)),
        title: `End session ${s.id}`, onclick: () => kick(s),
      }, 'Kick')))));
    const types = new Map();
    for (const s of sessions) types.set(s.type, (types.get(s.type) || 0) + 1);
    summary.textContent = `${sessions.length} connected` + (types.size
      ? ` · ${[...types].map(([t, n]) => `${n} ${t}`).join(' · ')}` : '');
    document.getElementById('count-sessions').textContent = String(sessions.length);
    empty.hidden = sessions.length > 0;
    table.hidden = sessions.length === 0;
  }

  async function refresh() {
    try {
      const body = await api.call('getAllSession');
      sessions = (body.data || []).slice().sort((a, b) =>
        String(a.type).localeCompare(String(b.type)) || Number(a.id) - Number(b.id) ||
        String(a.id).localeCompare(String(b.id)));
      error.hidden = true;
    } catch (e) {
      error.hidden = false;
      error.textContent = `Could not read the sessions: ${e.message}`;
    }
    if (!stopped) render();
  }

  async function kick(s) {
    const id = String(s.id);
    kicking.add(id);
    render();
    try {
      // ZLMediaKit's kick_session answers code 0 when it ended the session and -1 ("can not
      // find the target") when there was none; count_hit is kick_sessions' (several at once).
      const body = await api.act('kick_session', { id });
      toast(body.count_hit === 0 ? `Session ${id} had already ended.`
        : `Kicked session ${id} (${s.type}).`);
    } catch (e) {
      toast(e.message, 'error');
    }
    kicking.delete(id);
    await refresh();
  }

  filter.addEventListener('input', render);
  refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
