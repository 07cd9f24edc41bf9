// Proxies: the streams the server pulls (addStreamProxy) and pushes (addStreamPusherProxy),
// read every 2 s, each with a Delete button; a form adds a pull proxy.

import * as api from '../api.js';
import { bitrate, duration, h, replace, toast } from '../dom.js';
import { POLL_MS } from '../api.js';

export const proxiesView = { title: 'Proxies', mount };

function mount(root) {
  const error = h('p', { class: 'banner error', role: 'alert', hidden: true });
  const field = (id, label, props) => h('label', null, label,
    h('input', { class: 'input', id, autocomplete: 'off', spellcheck: false, ...props }));
  const transport = h('select', { class: 'input', id: 'proxy-rtp-type' },
    h('option', { value: '0' }, 'TCP'), h('option', { value: '1' }, 'UDP'));
  const add = h('button', { class: 'button', type: 'submit', id: 'proxy-add' }, 'Add proxy');
  const form = h('form', { class: 'toolbar', id: 'proxy-form' },
    field('proxy-app', 'App', { value: 'proxy', required: true }),
    field('proxy-stream', 'Stream', { required: true, placeholder: 'camera1' }),
    h('label', { class: 'grow' }, 'Source URL', h('input', { class: 'input mono', id: 'proxy-url',
      required: true, autocomplete: 'off', spellcheck: false,
      placeholder: 'rtsp://user:pass@192.168.1.64:554/Streaming/Channels/101' })),
    h('label', null, 'RTSP over', transport),
    field('proxy-retry', 'Retries', { type: 'number', value: '-1', min: '-1', step: '1',
      title: '-1 = forever' }),
    add);
  const pulls = h('tbody');
  const pullTable = h('table', { class: 'table', id: 'proxy-pulls' },
    h('thead', null, h('tr', null, h('th', null, 'Stream'), h('th', null, 'Source'),
      h('th', null, 'Status'), h('th', { class: 'num' }, 'Live'),
      h('th', { class: 'num' }, 'Re-pulls'), h('th', { class: 'num' }, 'Viewers'),
      h('th', { class: 'num' }, 'In'), h('th', { class: 'num' }, ''))), pulls);
  const pullsEmpty = h('div', { class: 'empty', hidden: true }, h('h2', null, 'No proxies'),
    h('p', { class: 'muted' }, 'No stream is being pulled from another server.'));
  const pushes = h('tbody');
  const pushTable = h('table', { class: 'table', id: 'proxy-pushes' },
    h('thead', null, h('tr', null, h('th', null, 'Stream'), h('th', null, 'Destination'),
      h('th', null, 'Status'), h('th', { class: 'num' }, 'Live'),
      h('th', { class: 'num' }, 'Re-pushes'), h('th', { class: 'num' }, 'Out'),
      h('th', { class: 'num' }, ''))), pushes);
  const pushesEmpty = h('div', { class: 'empty', hidden: true }, h('h2', null, 'No pushes'),
    h('p', { class: 'muted' }, 'No stream is being pushed to another server.'));
  root.append(
    h('header', { class: 'view-head' }, h('div', null, h('h1', null, 'Proxies'),
      h('p', { class: 'muted' }, 'Streams pulled from cameras and other servers, and streams pushed out.'))),
    error,
    h('section', { class: 'card' }, h('h2', null, 'Pull a stream'), form),
    h('section', { class: 'card table-card', id: 'proxies' }, h('h2', null, 'Pulled'),
      h('div', { class: 'table-scroll' }, pullTable), pullsEmpty),
    h('section', { class: 'card table-card', id: 'pushers' }, h('h2', null, 'Pushed'),
      h('div', { class: 'table-scroll' }, pushTable), pushesEmpty));

  let stopped = false;
  const busy = new Set();

  const status = (code) => h('span', { class: `badge ${code === 0 ? 'ok' : 'warn'}` },
    code === 0 ? 'playing' : 'retrying');
  const name = (src) => {
    const vhost = src?.vhost && src.vhost !== '__defaultVhost__' ? `${src.vhost}/` : '';
    return `${vhost}${src?.app ?? ''}/${src?.stream ?? ''}`;
  };
  const remove = (call, key, what) => h('button', {
    class: 'button danger small', type: 'button', disabled: busy.has(key),
    title: `Delete ${what}`, onclick: () => del(call, key, what),
  }, 'Delete');

  function render(pullList, pushList) {
    replace(pulls, pullList.map((p) => h('tr', { dataset: { key: String(p.key) } },
      h('td', { class: 'mono' }, name(p.src)),
      h('td', { class: 'mono' }, String(p.url ?? '')),
      h('td', null, status(p.status)),
      h('td', { class: 'num' }, duration(p.liveSecs)),
      h('td', { class: 'num' }, String(p.rePullCount ?? 0)),
      h('td', { class: 'num' }, String(p.totalReaderCount ?? 0)),
      h('td', { class: 'num mono' }, bitrate(p.bytesSpeed)),
      h('td', { class: 'num' }, remove('delStreamProxy', String(p.key), name(p.src))))));
    pullTable.hidden = pullList.length === 0;
    pullsEmpty.hidden = pullList.length > 0;
    replace(pushes, pushList.map((p) => h('tr', { dataset: { key: String(p.key) } },
      h('td', { class: 'mono' }, name(p.src)),
      h('td', { class: 'mono' }, String(p.url ?? '')),
      h('td', null, status(p.status)),
      h('td', { class: 'num' }, duration(p.liveSecs)),
      h('td', { class: 'num' }, String(p.rePublishCount ?? 0)),
      h('td', { class: 'num mono' }, bitrate(p.bytesSpeed)),
      h('td', { class: 'num' }, remove('delStreamPusherProxy', String(p.key),
        `the push of ${name(p.src)}`)))));
    pushTable.hidden = pushList.length === 0;
    pushesEmpty.hidden = pushList.length > 0;
  }

  async function refresh() {
    // listStreamProxy answers {"code": 0} without `data` when there is none.
    const [pullAnswer, pushAnswer] = await Promise.allSettled([api.call('listStreamProxy'),
      api.call('listStreamPusherProxy')]);
    if (stopped) return;
    const failed = [pullAnswer, pushAnswer].filter((r) => r.status === 'rejected');
    error.hidden = failed.length === 0;
    error.textContent = failed.map((r) => r.reason.message).join(' · ');
    const list = (r) => (r.status === 'fulfilled' && Array.isArray(r.value.data) ? r.value.data : []);
    render(list(pullAnswer), list(pushAnswer));
  }

  async function del(call, key, what) {
    busy.add(key);
    await refresh();
    try {
      const body = await api.act(call, { key });
      toast(body.data?.flag ? `Deleted ${what}.` : `${what} had already ended.`);
    } catch (e) {
      toast(e.message, 'error');
    }
    busy.delete(key);
    await refresh();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const app = document.getElementById('proxy-app').value.trim();
    const stream = document.getElementById('proxy-stream').value.trim();
    add.disabled = true;
    add.textContent = 'Connecting…';
    try {
      // Answers once the source plays, or with why it could not.
      const body = await api.act('addStreamProxy', {
        vhost: '__defaultVhost__', app, stream,
        url: document.getElementById('proxy-url').value.trim(),
        rtp_type: transport.value,
        retry_count: document.getElementById('proxy-retry').value || '-1',
      });
      toast(`Pulling ${body.data.key}.`);
    } catch (e) {
      toast(e.message, 'error');
    }
    add.disabled = false;
    add.textContent = 'Add proxy';
    await refresh();
  });

  refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
