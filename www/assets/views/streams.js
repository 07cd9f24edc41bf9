// Streams: the live graphs, one row per live stream (its schemas grouped), and the selected
// stream's panel: a player (HTTP-FLV, HLS, WebRTC), its tracks, outputs, addresses and
// actions (MP4 recording, close).

import * as api from '../api.js';
import { bitrate, bytes, duration, h, replace, toast } from '../dom.js';
import { Graph } from '../graph.js';
import { Player } from '../player.js';

export const streamsView = { title: 'Streams', mount };

/** The stream whose panel is open, kept across visits to other views. */
let selected = null;

function mount(root, { live }) {
  const summary = h('p', { class: 'muted', id: 'streams-summary' });
  const bitrateValue = h('div', { class: 'figure-value', id: 'figure-bitrate' });
  const viewersValue = h('div', { class: 'figure-value', id: 'figure-viewers' });
  const streamsValue = h('div', { class: 'figure-value', id: 'figure-streams' });
  const originsValue = h('div', { class: 'muted small' });
  const bitrateCanvas = h('canvas', { class: 'graph', id: 'graph-bitrate', 'aria-hidden': 'true' });
  const viewersCanvas = h('canvas', { class: 'graph', id: 'graph-viewers', 'aria-hidden': 'true' });
  const bitrateGraph = new Graph(bitrateCanvas, { format: bitrate, color: '--accent' });
  const viewersGraph = new Graph(viewersCanvas, {
    format: (v) => `${v} viewer${v === 1 ? '' : 's'}`,
    color: '--accent-2',
  });
  const tbody = h('tbody');
  const table = h('table', { class: 'table', id: 'streams-table' },
    h('thead', null, h('tr', null,
      h('th', null, 'Stream'), h('th', null, 'Origin'), h('th', null, 'Tracks'),
      h('th', { class: 'num' }, 'Bitrate'), h('th', { class: 'num' }, 'Viewers'),
      h('th', { class: 'num' }, 'Uptime'), h('th', null, 'Outputs'))),
    tbody);
  const empty = h('div', { class: 'empty', id: 'streams-empty', hidden: true });
  const error = h('p', { class: 'banner error', role: 'alert', hidden: true });
  const panel = h('section', { class: 'card panel', id: 'stream-panel', hidden: true });

  root.append(
    h('header', { class: 'view-head' }, h('div', null, h('h1', null, 'Streams'), summary)),
    error,
    h('section', { class: 'figures' },
      h('div', { class: 'card figure' },
        h('div', { class: 'figure-label' }, 'Total bitrate'), bitrateValue, bitrateCanvas),
      h('div', { class: 'card figure' },
        h('div', { class: 'figure-label' }, 'Viewers'), viewersValue, viewersCanvas),
      h('div', { class: 'card figure figure-narrow' },
        h('div', { class: 'figure-label' }, 'Live streams'), streamsValue, originsValue)),
    h('section', { class: 'card table-card' }, h('div', { class: 'table-scroll' }, table), empty),
    panel,
  );

  let config = {};
  api.serverConfig().then((c) => {
    config = c;
    render(live);
  }, () => {});
  const details = new StreamPanel(panel, () => config, live);

  function render(state) {
    error.hidden = !state.error;
    error.textContent = state.error ? `Could not read the streams: ${state.error.message}` : '';
    const { streams } = state;
    const viewers = streams.reduce((n, s) => n + s.viewers, 0);
    const total = streams.reduce((n, s) => n + s.bytesSpeed, 0);
    bitrateValue.textContent = bitrate(total);
    viewersValue.textContent = String(viewers);
    streamsValue.textContent = String(streams.length);
    const origins = new Map();
    for (const s of streams) {
      const kind = s.first.originTypeStr || `origin ${s.first.originType}`;
      origins.set(kind, (origins.get(kind) || 0) + 1);
    }
    originsValue.textContent = [...origins].map(([k, n]) => `${n} ${k}`).join(' · ');
    summary.textContent = state.readAt
      ? `${streams.length} live · updated ${state.readAt.toLocaleTimeString()}`
      : 'Reading…';
    bitrateGraph.set(state.history.bitrate);
    viewersGraph.set(state.history.viewers);

    replace(tbody, streams.map((s) => row(s)));
    empty.hidden = streams.length > 0 || !state.readAt;
    table.hidden = streams.length === 0;
    if (streams.length === 0) renderEmpty(empty, config);
    details.update(streams.find((s) => s.key === selected) || null, selected);
  }

  function row(s) {
    const origin = s.first.originSock || {};
    const tr = h('tr', {
      class: s.key === selected ? 'selectable selected' : 'selectable',
      dataset: { key: s.key },
      tabindex: '0',
      'aria-selected': String(s.key === selected),
      onclick: () => select(s.key),
      onkeydown: (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          select(s.key);
        }
      },
    },
    h('td', null,
      h('div', { class: 'stream-name' }, h('span', { class: 'app' }, `${s.app}/`),
        h('span', { class: 'name' }, s.stream)),
      s.vhost !== '__defaultVhost__' ? h('div', { class: 'muted small' }, s.vhost) : null),
    h('td', null,
      h('span', { class: 'badge' }, s.first.originTypeStr || String(s.first.originType)),
      origin.peer_ip ? h('div', { class: 'muted small mono' },
        `${origin.peer_ip}:${origin.peer_port}`) : null),
    h('td', null, h('div', { class: 'tracks' }, s.tracks.map((t) =>
      h('span', { class: `codec ${t.codec_type === 0 ? 'video' : 'audio'}`,
        title: `${t.codec_id_name} (codec_id ${t.codec_id})${t.ready ? '' : ', not ready'}` },
      h('span', { class: 'codec-name' }, api.codecName(t)),
      api.trackDetail(t) ? h('span', { class: 'codec-detail' }, api.trackDetail(t)) : null)))),
    h('td', { class: 'num mono' }, bitrate(s.bytesSpeed)),
    h('td', { class: 'num mono viewers' }, String(s.viewers)),
    h('td', { class: 'num mono' }, duration(s.aliveSecond)),
    h('td', null, h('div', { class: 'schemas' },
      s.schemas.map((e) => h('span', { class: 'schema' }, e.schema)),
      s.recordingMp4 ? h('span', { class: 'schema rec', title: 'Recording MP4' }, '● mp4') : null,
    )));
    return tr;
  }

  function select(key) {
    selected = selected === key ? null : key;
    render(live);
    if (selected) panel.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  const redraw = () => {
    bitrateGraph.draw();
    viewersGraph.draw();
  };
  window.addEventListener('resize', redraw);
  window.addEventListener('themechange', redraw);
  const off = live.on(render);
  render(live);
  return () => {
    off();
    window.removeEventListener('resize', redraw);
    window.removeEventListener('themechange', redraw);
    details.destroy();
  };
}

function renderEmpty(box, config) {
  const port = Number(config['rtmp.port']) || 1935;
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  replace(box,
    h('h2', null, 'No live streams'),
    h('p', { class: 'muted' }, 'Publish one and it appears here within two seconds, for example:'),
    h('pre', { class: 'code' },
      `ffmpeg -re -f lavfi -i testsrc=size=1280x720:rate=30 -c:v libx264 -f flv rtmp://${host}:${port}/live/test`));
}

/** The selected stream's panel; keeps its player running across polls. */
class StreamPanel {
  constructor(root, config, live) {
    this.root = root;
    this.config = config;
    this.live = live;
    this.key = null;
    this.tab = 'flv';
    this.video = h('video', { id: 'player', muted: true, playsinline: true, controls: true,
      autoplay: true });
    this.video.muted = true;
    this.playerStatus = h('div', { class: 'player-status muted small', id: 'player-status' });
    this.player = new Player(this.video, (msg) => {
      this.playerStatus.textContent = `Playback failed: ${msg}`;
      this.playerStatus.classList.add('error');
    });
    this.statusTimer = setInterval(() => this.showPlayback(), 500);
    this.info = h('div', { class: 'panel-info' });
    this.figures = h('div');
    this.recordOn = false;
  }

  destroy() {
    clearInterval(this.statusTimer);
    this.player.stop();
  }

  /** Shows `stream` (null when `key` is no longer live, or nothing is selected). */
  update(stream, key) {
    if (key === null) {
      if (this.key !== null) this.player.stop();
      this.key = null;
      this.root.hidden = true;
      return;
    }
    this.root.hidden = false;
    if (key !== this.key) {
      this.key = key;
      this.build(stream);
      if (stream) this.play();
    } else if (!stream && this.stream) {
      this.player.stop();
      this.build(null);
    } else if (stream && !this.stream) {
      this.build(stream);
      this.play();
    }
    this.stream = stream;
    if (stream) this.fill(stream);
  }

  build(stream) {
    this.stream = stream;
    if (!stream) {
      replace(this.root,
        h('div', { class: 'panel-head' }, h('h2', null, this.key.split('/').slice(1).join('/')),
          this.closeButton()),
        h('p', { class: 'empty' }, 'This stream is not live any more.'));
      return;
    }
    const tabs = h('div', { class: 'tabs', role: 'tablist' },
      [['flv', 'HTTP-FLV'], ['hls', 'HLS'], ['webrtc', 'WebRTC']].map(([id, label]) =>
        h('button', {
          class: 'tab', type: 'button', role: 'tab', dataset: { tab: id },
          'aria-selected': String(this.tab === id),
          onclick: () => {
            this.tab = id;
            for (const t of tabs.children) t.setAttribute('aria-selected', String(t.dataset.tab === id));
            this.play();
          },
        }, label)));
    this.webrtcNote = h('div', { class: 'player-note', hidden: true },
      h('strong', null, 'WebRTC is off on this server.'),
      h('p', null, 'Set rtc.port to play streams over WHEP; HTTP-FLV and HLS play meanwhile.'));
    replace(this.root,
      h('div', { class: 'panel-head' },
        h('div', null,
          h('h2', null, h('span', { class: 'muted' }, `${stream.app}/`), stream.stream),
          h('div', { class: 'muted small', id: 'panel-sub' })),
        this.closeButton()),
      h('div', { class: 'panel-body' },
        h('div', { class: 'player-col' }, tabs,
          h('div', { class: 'player-frame' }, this.video, this.webrtcNote),
          this.playerStatus),
        this.info));
    this.recordToggle = this.recordButton();
    replace(this.info, this.figures,
      h('div', { class: 'actions' }, this.recordToggle, this.closeStreamButton()));
  }

  closeButton() {
    return h('button', { class: 'button ghost small', type: 'button', 'aria-label': 'Close panel',
      onclick: () => {
        selected = null;
        this.update(null, null);
        for (const tr of document.querySelectorAll('#streams-table tr.selected')) {
          tr.classList.remove('selected');
        }
      } }, '✕');
  }

  play() {
    const stream = this.stream;
    if (!stream) return;
    this.playerStatus.textContent = '';
    this.playerStatus.classList.remove('error');
    const urls = api.playbackUrls(stream, this.config());
    const noWebRtc = this.tab === 'webrtc' && !urls.webrtc;
    this.webrtcNote.hidden = !noWebRtc;
    this.video.hidden = noWebRtc;
    const fail = (e) => {
      this.playerStatus.textContent = `Playback failed: ${e.message}`;
      this.playerStatus.classList.add('error');
    };
    if (this.tab === 'flv') this.player.playFlv(urls.flv).catch(fail);
    else if (this.tab === 'hls') this.player.playHls(urls.hls).catch(fail);
    else if (urls.webrtc) this.player.playWebRtc(urls.webrtc).catch(fail);
    else this.player.stop();
  }

  showPlayback() {
    if (!this.stream || this.video.hidden || this.playerStatus.classList.contains('error')) {
      return;
    }
    const v = this.video;
    if (v.readyState < 2) {
      this.playerStatus.textContent = 'Connecting…';
      return;
    }
    const quality = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    let latency = '';
    if (v.buffered.length > 0) {
      latency = ` · ${(v.buffered.end(v.buffered.length - 1) - v.currentTime).toFixed(1)} s buffered`;
    }
    this.playerStatus.textContent = `Playing ${v.videoWidth}×${v.videoHeight}` +
      ` · ${v.currentTime.toFixed(1)} s${latency}` +
      (quality ? ` · ${quality.droppedVideoFrames} dropped` : '');
  }

  fill(s) {
    const sub = this.root.querySelector('#panel-sub');
    if (sub) {
      const origin = s.first.originSock || {};
      sub.textContent = [
        s.vhost !== '__defaultVhost__' ? s.vhost : null,
        s.first.originTypeStr,
        origin.peer_ip ? `from ${origin.peer_ip}:${origin.peer_port}` : null,
        `up ${duration(s.aliveSecond)}`,
        `${bytes(s.totalBytes)} in`,
      ].filter(Boolean).join(' · ');
    }
    const urls = api.playbackUrls(s, this.config());
    this.recordOn = s.recordingMp4;
    this.recordToggle.textContent = s.recordingMp4 ? 'Stop MP4 recording' : 'Record MP4';
    replace(this.figures,
      h('h3', null, 'Tracks'),
      h('table', { class: 'table compact', id: 'panel-tracks' },
        h('thead', null, h('tr', null, h('th', null, 'Codec'), h('th', null, 'Format'),
          h('th', { class: 'num' }, 'Frames'), h('th', null, 'GOP'))),
        h('tbody', null, s.tracks.map((t) => h('tr', null,
          h('td', null, h('span', { class: `dot ${t.ready ? 'ok' : 'wait'}`,
            title: t.ready ? 'ready' : 'not ready' }), api.codecName(t)),
          h('td', null, api.trackDetail(t)),
          h('td', { class: 'num mono' }, String(t.frames ?? '')),
          h('td', { class: 'mono' }, t.codec_type === 0 && t.gop_size
            ? `${t.gop_size} frames · ${t.gop_interval_ms} ms` : ''))))),
      h('h3', null, 'Audience'),
      h('dl', { class: 'kv', id: 'panel-audience' },
        h('dt', null, 'Watching now'), h('dd', { class: 'mono' }, String(s.viewers)),
        h('dt', null, 'Viewers since publish'), h('dd', { class: 'mono' }, String(s.viewersEver)),
        h('dt', null, 'Listed as'), h('dd', null, h('div', { class: 'schemas' },
          s.schemas.map((e) => h('span', { class: 'schema' }, e.schema))))),
      h('h3', null, 'Addresses'),
      h('dl', { class: 'urls' }, Object.entries({
        'HTTP-FLV': urls.flv, HLS: urls.hls, 'WebRTC (WHEP)': urls.webrtc, RTMP: urls.rtmp,
        RTSP: urls.rtsp,
      }).filter(([, url]) => url).map(([label, url]) => [
        h('dt', null, label),
        h('dd', null, h('code', null, url), h('button', {
          class: 'button ghost tiny', type: 'button', title: `Copy the ${label} address`,
          onclick: () => navigator.clipboard.writeText(url).then(
            () => toast(`${label} address copied.`),
            () => toast('The browser refused the clipboard.', 'error')),
        }, 'Copy')),
      ])));
  }

  recordButton() {
    const button = h('button', {
      class: 'button', type: 'button', id: 'record-toggle',
      onclick: async () => {
        const s = this.stream;
        const on = this.recordOn;
        if (!s) return;
        button.disabled = true;
        try {
          await api.act(on ? 'stopRecord' : 'startRecord',
            { type: 1, vhost: s.vhost, app: s.app, stream: s.stream });
          toast(on ? 'MP4 recording stopped.' : 'MP4 recording started.');
        } catch (err) {
          toast(err.message, 'error');
        }
        await this.live.poll();
        button.disabled = false;
      },
    }, 'Record MP4');
    return button;
  }

  closeStreamButton() {
    let armed = false;
    const button = h('button', {
      class: 'button danger', type: 'button', id: 'close-stream',
      onclick: async () => {
        if (!armed) {
          armed = true;
          button.textContent = 'Click again to close';
          setTimeout(() => {
            armed = false;
            button.textContent = 'Close stream';
          }, 3000);
          return;
        }
        const s = this.stream;
        if (!s) return;
        button.disabled = true;
        try {
          await api.act('close_stream',
            { schema: s.first.schema, vhost: s.vhost, app: s.app, stream: s.stream, force: 1 });
          toast(`Closed ${s.app}/${s.stream}.`);
        } catch (err) {
          toast(err.message, 'error');
        }
        this.live.poll();
      },
    }, 'Close stream');
    return button;
  }
}
