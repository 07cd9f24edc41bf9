// Sessions: every connection the session table knows (publishers and viewers of every
// protocol), read every 2 s, filterable, each with a Kick button (kick_session).

import * as api from '../api.js';
import { h, replace, toast } from '../dom.js';
import { POLL_MS } from '../api.js';

export const sessionsView = { title: 'Sessions', mount };

function mount(root) {
  const summary = h('p', { class: 'muted' }, 'Reading…');
  const filter = h('input', { type: 'search', class: 'input', id: 'sessions-filter',
    placeholder: 'Filter: stream, protocol, address', 'aria-label': 'Filter sessions' });
  const tbody = h('tbody');
  const table = h('table', { class: 'table', id: 'sessions-table' },
    h('thead', null, h('tr', null,
      h('th', null, 'ID'), h('th', null, 'Role'), h('th', null, 'Protocol'),
      h('th', null, 'Stream'), h('th', null, 'Peer'), h('th', null, 'Local'),
      h('th', { class: 'num' }, 'Bytes'), h('th', { class: 'num' }, 'Since'),
      h('th', { class: 'num' }, ''))),
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
    const shown = sessions.filter((s) => !needle || [s.id, s.role, s.protocol, s.schema,
      streamName(s), `${s.peer_ip}:${s.peer_port}`, `${s.local_ip}:${s.local_port}`]
      .some((v) => String(v ?? '').toLowerCase().includes(needle)));
    replace(tbody, shown.map((s) => h('tr', { dataset: { id: String(s.id) } },
      h('td', { class: 'mono' }, String(s.id)),
      h('td', null, h('span', { class: `badge ${s.role === 'publisher' ? 'accent' : ''}` },
        String(s.role ?? ''))),
      h('td', null, protocolName(s)),
      h('td', { class: 'mono' }, streamName(s)),
      h('td', { class: 'mono' }, `${s.peer_ip}:${s.peer_port}`),
      h('td', { class: 'mono' }, `${s.local_ip}:${s.local_port}`),
      h('td', { class: 'num mono' }, bytes(s.totalBytes)),
      h('td', { class: 'num muted' }, since(s.createStamp)),
      h('td', { class: 'num' }, h('button', {
        class: 'button danger small kick', type: 'button', disabled: kicking.has(String(s.id)),
        title: `End session ${s.id}`, onclick: () => kick(s),
      }, 'Kick')))));
    const types = new Map();
    for (const s of sessions) {
      const role = s.role === 'publisher' ? 'publishing' : 'playing';
      types.set(role, (types.get(role) || 0) + 1);
    }
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
        String(a.role).localeCompare(String(b.role)) || Number(a.id) - Number(b.id) ||
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
        : `Kicked session ${id} (${s.role} of ${streamName(s)}).`);
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

// `schema` and `protocol` say what a session speaks: rtmp/rtmp, rtsp/rtsp, rtmp/http
// (HTTP-FLV), hls/http, …
function protocolName(s) {
  const over = s.protocol === 'ws' ? 'WS' : s.protocol === 'http' ? 'HTTP' : '';
  const what = { rtmp: over ? 'FLV' : 'RTMP', rtsp: 'RTSP', ts: 'TS', fmp4: 'fMP4', hls: 'HLS',
    'hls.fmp4': 'LL-HLS' }[s.schema] || String(s.schema ?? '');
  return over && !what.includes('HLS') ? `${over}-${what}` : what;
}

function streamName(s) {
  const vhost = s.vhost && s.vhost !== '__defaultVhost__' ? `${s.vhost}/` : '';
  return `${vhost}${s.app ?? ''}/${s.stream ?? ''}`;
}

function bytes(n) {
  const v = Number(n) || 0;
  if (v >= 1e9) return `${(v / 1e9).toFixed(1)} GB`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)} MB`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(0)} kB`;
  return `${v} B`;
}

function since(stamp) {
  const secs = Math.max(0, Math.round(Date.now() / 1000 - Number(stamp || 0)));
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ${secs % 60}s`;
  return `${Math.floor(secs / 3600)}h ${Math.floor(secs % 3600 / 60)}m`;
}
