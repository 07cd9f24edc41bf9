// Recordings: a stream's MP4 files by month and day (getMP4RecordFile), each playable here and
// downloadable when the recordings lie under the HTTP root (protocol.mp4_save_path =
// http.rootPath, the default), where the file server serves them.

import * as api from '../api.js';
import { encodePath, h, replace } from '../dom.js';

export const recordingsView = { title: 'Recordings', mount };

/** The last stream and month looked at, kept across visits. */
const last = { vhost: '__defaultVhost__', app: '', stream: '', month: '' };

function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}`;
}

/** `./www/` and `www` name the same folder; the API's paths are compared in this form. */
function normalDir(path) {
  return String(path || '').replace(/\/+$/, '').replace(/^\.\//, '');
}

function mount(root, { live }) {
  const streamsList = h('datalist', { id: 'recording-streams' });
  const app = h('input', { class: 'input', id: 'rec-app', required: true, placeholder: 'live',
    value: last.app, spellcheck: 'false', 'aria-label': 'App' });
  const stream = h('input', { class: 'input', id: 'rec-stream', required: true,
    placeholder: 'stream', value: last.stream, list: 'recording-streams', spellcheck: 'false',
    'aria-label': 'Stream' });
  const month = h('input', { class: 'input', id: 'rec-month', type: 'month', required: true,
    value: last.month || thisMonth(), 'aria-label': 'Month' });
  const form = h('form', { class: 'toolbar', id: 'recordings-form' },
    h('label', null, h('span', null, 'App'), app),
    h('label', null, h('span', null, 'Stream'), stream),
    h('label', null, h('span', null, 'Month'), month),
    h('button', { class: 'button primary', type: 'submit' }, 'Find recordings'),
    streamsList);
  const days = h('div', { class: 'days', id: 'recording-days' });
  const files = h('div', { id: 'recording-files' });
  const viewer = h('div', { class: 'recording-viewer', hidden: true });
  const note = h('p', { class: 'muted small' });
  root.append(
    h('header', { class: 'view-head' }, h('div', null, h('h1', null, 'Recordings'),
      h('p', { class: 'muted' }, 'MP4 segments written by the recorder, by day.'))),
    h('section', { class: 'card' }, form, note),
    h('section', { class: 'card', id: 'recordings-result', hidden: true }, days, files, viewer));

  let config = {};
  api.serverConfig().then((c) => {
    config = c;
    explain();
  }, () => {});

  /** Whether files under the record root are reachable over HTTP, and at which path. */
  function downloadBase() {
    const save = normalDir(config['protocol.mp4_save_path']);
    const web = normalDir(config['http.rootPath']);
    const appName = config['record.appName'] || 'record';
    return save !== '' && save === web ? `/${encodePath(appName)}` : null;
  }

  function explain() {
    note.textContent = downloadBase()
      ? ''
      : 'Recordings are saved outside the HTTP root (protocol.mp4_save_path is not ' +
        'http.rootPath), so this server does not serve them for download; the list shows ' +
        'their names.';
  }

  function fillStreams(state) {
    replace(streamsList, state.streams.map((s) => h('option', { value: s.stream },
      `${s.app}/${s.stream}`)));
    if (!app.value && state.streams.length > 0) {
      app.value = state.streams[0].app;
      stream.value = state.streams[0].stream;
    }
  }

  async function find(event) {
    if (event) event.preventDefault();
    Object.assign(last, { app: app.value.trim(), stream: stream.value.trim(), month: month.value });
    const result = root.querySelector('#recordings-result');
    result.hidden = false;
    viewer.hidden = true;
    replace(files);
    replace(days, h('p', { class: 'muted' }, 'Reading…'));
    try {
      const body = await api.call('getMP4RecordFile',
        { vhost: last.vhost, app: last.app, stream: last.stream, period: last.month });
      const list = ((body.data && body.data.paths) || []).slice().sort();
      if (list.length === 0) {
        replace(days, h('div', { class: 'empty' }, h('h2', null, 'No recordings'),
          h('p', { class: 'muted' }, `Nothing was recorded for ${last.app}/${last.stream} in ` +
            `${last.month}.`)));
        return;
      }
      replace(days, h('div', { class: 'muted small label' }, `Days with recordings in ${last.month}`),
        h('div', { class: 'chips' }, list.map((day) => h('button', {
          class: 'chip', type: 'button', dataset: { day },
          onclick: (e) => {
            for (const c of days.querySelectorAll('.chip')) c.removeAttribute('aria-pressed');
            e.currentTarget.setAttribute('aria-pressed', 'true');
            showDay(day);
          },
        }, day))));
      const first = days.querySelector('.chip:last-child');
      first.setAttribute('aria-pressed', 'true');
      showDay(first.dataset.day);
    } catch (e) {
      replace(days, h('p', { class: 'banner error', role: 'alert' }, e.message));
    }
  }

  async function showDay(day) {
    replace(files, h('p', { class: 'muted' }, 'Reading…'));
    try {
      const body = await api.call('getMP4RecordFile',
        { vhost: last.vhost, app: last.app, stream: last.stream, period: day });
      const names = ((body.data && body.data.paths) || []).slice().sort();
      const base = downloadBase();
      const href = (name) => `${base}/${encodePath(last.app)}/${encodePath(last.stream)}/` +
        `${encodeURIComponent(day)}/${encodeURIComponent(name)}`;
      replace(files,
        h('table', { class: 'table', id: 'recordings-table' },
          h('thead', null, h('tr', null, h('th', null, `Files of ${day}`),
            h('th', { class: 'num' }, ''))),
          h('tbody', null, names.map((name) => h('tr', { dataset: { file: name } },
            h('td', { class: 'mono' }, name),
            h('td', { class: 'num' }, base ? [
              h('button', { class: 'button ghost small', type: 'button',
                onclick: () => play(href(name), name) }, 'Play'),
              h('a', { class: 'button small', href: href(name), download: name }, 'Download'),
            ] : h('span', { class: 'muted small' }, 'not served over HTTP')))))),
        h('p', { class: 'muted small' }, `In ${String((body.data && body.data.rootPath) || '')}`));
    } catch (e) {
      replace(files, h('p', { class: 'banner error', role: 'alert' }, e.message));
    }
  }

  function play(url, name) {
    viewer.hidden = false;
    replace(viewer, h('div', { class: 'muted small' }, name),
      h('video', { src: url, controls: true, autoplay: true, muted: true, playsinline: true }));
  }

  form.addEventListener('submit', find);
  const off = live.on(fillStreams);
  fillStreams(live);
  if (last.app && last.stream) find();
  return () => {
    off();
    for (const v of viewer.querySelectorAll('video')) v.removeAttribute('src');
  };
}
