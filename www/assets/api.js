// The console's only way to the server: ZLMediaKit's `/index/api/<name>` calls, with its
// envelope `{code, msg, data}` and its cookie login. The console never holds the secret past
// the sign-in: the server's ZLM_LOGINED cookie (HttpOnly) carries the session.

import { md5 } from './md5.js';

/** How often the live figures (streams, sessions, graphs) are read. */
export const POLL_MS = 2000;

/** ZLMediaKit's codes (WebApi.h ApiErr). */
export const Code = Object.freeze({
  Success: 0,
  OtherFailed: -1,
  AuthFailed: -100,
  InvalidArgs: -300,
  Exception: -400,
  NotFound: -500,
});

/** A call that answered with a code other than 0, or no JSON at all. */
export class ApiError extends Error {
  constructor(call, code, msg, body) {
    super(msg ? `${call}: ${msg}` : `${call}: code ${code}`);
    this.call = call;
    this.code = code;
    this.body = body;
  }
}

/** Called when any call answers -100 after sign-in (the login expired or was ended). */
let onAuthLost = () => {};
export function setAuthLostHandler(handler) {
  onAuthLost = handler;
}

/**
 * The raw answer of `name` with `args`: GET with the arguments in the query, or POST with a
 * form body (what ZLMediaKit accepts for every call). Rejects only when there is no JSON.
 */
export async function raw(name, args = {}, method = 'GET') {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(args)) {
    if (value !== undefined && value !== null) form.append(key, String(value));
  }
  let url = `/index/api/${name}`;
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (method === 'GET') {
    const query = form.toString();
    if (query) url += `?${query}`;
  } else {
    init.body = form;
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new ApiError(name, Code.OtherFailed, `the server did not answer (${e.message})`);
  }
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(name, Code.OtherFailed, `HTTP ${resp.status}, not a JSON answer`);
  }
}

/** The answer of `name` when its code is 0; an ApiError otherwise. */
export async function call(name, args = {}, method = 'GET') {
  const body = await raw(name, args, method);
  if (body.code === Code.AuthFailed) onAuthLost(body);
  if (body.code !== Code.Success) throw new ApiError(name, body.code, body.msg, body);
  return body;
}

/** A call that changes something: POST with a form body. */
export function act(name, args = {}) {
  return call(name, args, 'POST');
}

/**
 * Whether the browser is signed in: `version` answers 0 with a valid login cookie, -100
 * (with a fresh `cookie` to sign in with) without one.
 */
export async function signedIn() {
  const body = await raw('version');
  return body.code === Code.Success ? { ok: true, body } : { ok: false, body };
}

/**
 * ZLMediaKit's cookie login: a call without credentials answers -100 with a `cookie` (also
 * set as ZLM_UNLOGIN); `login?digest=md5("zlmediakit:" + secret + ":" + cookie)` answers 0 and
 * sets ZLM_LOGINED.
 */
export async function signIn(secret) {
  const probe = await signedIn();
  if (probe.ok) return;
  const cookie = probe.body.cookie;
  if (probe.body.code !== Code.AuthFailed || typeof cookie !== 'string' || cookie === '') {
    throw new ApiError('version', probe.body.code, probe.body.msg ||
      'the server offered no login cookie', probe.body);
  }
  const body = await raw('login', { digest: md5(`zlmediakit:${secret}:${cookie}`) });
  if (body.code !== Code.Success) {
    throw new ApiError('login', body.code,
      body.code === Code.AuthFailed ? 'wrong secret' : body.msg, body);
  }
}

/** Ends the login (ZLMediaKit's `logout`). */
export async function signOut() {
  await raw('logout');
}

/** The stream key of a MediaSource entry: `vhost/app/stream`. */
export function streamKey(source) {
  return `${source.vhost}/${source.app}/${source.stream}`;
}

/**
 * getMediaList's entries (one per stream per schema) grouped into one per stream, in the
 * order of first appearance sorted by app and stream name. Each keeps every schema's entry.
 */
export function groupStreams(entries) {
  const byKey = new Map();
  for (const entry of entries || []) {
    const key = streamKey(entry);
    let stream = byKey.get(key);
    if (!stream) {
      stream = {
        key,
        vhost: entry.vhost,
        app: entry.app,
        stream: entry.stream,
        schemas: [],
        first: entry,
      };
      byKey.set(key, stream);
    }
    stream.schemas.push(entry);
  }
  const streams = [...byKey.values()];
  for (const s of streams) {
    s.schemas.sort((a, b) => String(a.schema).localeCompare(String(b.schema)));
    // The figures of the whole stream. ferrostream gives every schema's entry the stream's
    // figures: bytesSpeed and totalBytes are the publisher's, readerCount the viewers now on
    // every protocol, totalReaderCount the viewers ever. So the largest of each is the
    // stream's (ZLMediaKit's per-schema counts would be undercounted by this, not ours).
    s.bytesSpeed = Math.max(0, ...s.schemas.map((e) => Number(e.bytesSpeed) || 0));
    s.totalBytes = Math.max(0, ...s.schemas.map((e) => Number(e.totalBytes) || 0));
    s.viewers = Math.max(0, ...s.schemas.map((e) => Number(e.readerCount) || 0));
    s.viewersEver = Math.max(0, ...s.schemas.map((e) => Number(e.totalReaderCount) || 0));
    s.aliveSecond = Math.max(0, ...s.schemas.map((e) => Number(e.aliveSecond) || 0));
    s.tracks = [...(s.first.tracks || [])].sort((a, b) => a.codec_type - b.codec_type);
    s.recordingMp4 = s.schemas.some((e) => e.isRecordingMP4);
    s.recordingHls = s.schemas.some((e) => e.isRecordingHLS);
  }
  streams.sort((a, b) => a.key.localeCompare(b.key));
  return streams;
}

let configCache = null;

/**
 * getServerConfig's one object (`"section.key": "value"`), read once and kept until
 * `refresh` (the config view refreshes it after setServerConfig).
 */
export async function serverConfig(refresh = false) {
  if (refresh || configCache === null) {
    configCache = call('getServerConfig').then((body) => (body.data && body.data[0]) || {});
    configCache.catch(() => {
      configCache = null;
    });
  }
  return configCache;
}

/** The vhost's query suffix for a playback URL (empty for the default vhost). */
function vhostQuery(vhost) {
  return vhost && vhost !== '__defaultVhost__' ? `?vhost=${encodeURIComponent(vhost)}` : '';
}

/** One path segment or several, each percent-encoded. */
function segments(path) {
  return String(path).split('/').map(encodeURIComponent).join('/');
}

/**
 * The addresses a stream plays at: HTTP-FLV, HLS and WHEP (WebRTC) on this origin, RTMP and
 * RTSP on the ports the config names (absent when that listener is off).
 */
export function playbackUrls(stream, config = {}) {
  const path = `${segments(stream.app)}/${segments(stream.stream)}`;
  const q = vhostQuery(stream.vhost);
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  const urls = {
    flv: `${location.origin}/${path}.live.flv${q}`,
    hls: `${location.origin}/${path}/hls.m3u8${q}`,
  };
  if (Number(config['rtc.port']) > 0) {
    const whep = new URLSearchParams({ app: stream.app, stream: stream.stream });
    if (stream.vhost && stream.vhost !== '__defaultVhost__') whep.set('vhost', stream.vhost);
    urls.webrtc = `${location.origin}/index/api/whep?${whep}`;
  }
  const rtmp = Number(config['rtmp.port']);
  const rtsp = Number(config['rtsp.port']);
  if (rtmp > 0) urls.rtmp = `rtmp://${host}:${rtmp}/${path}${q}`;
  if (rtsp > 0) urls.rtsp = `rtsp://${host}:${rtsp}/${path}${q}`;
  return urls;
}

/** ZLMediaKit's codec names (`codec_id_name`) as people write them. */
const CODEC_NAMES = {
  'mpeg4-generic': 'AAC',
  PCMA: 'G.711 A-law',
  PCMU: 'G.711 µ-law',
  opus: 'Opus',
  H264: 'H.264',
  H265: 'H.265',
};

/** A track's codec as shown: H.264, H.265, AAC, Opus… (the API's own name otherwise). */
export function codecName(track) {
  const name = String(track.codec_id_name ?? '');
  return CODEC_NAMES[name] || name || `codec ${track.codec_id}`;
}

/** A track's figures in a few words: `320×240 · 25 fps` or `44.1 kHz · 2 ch`. */
export function trackDetail(track) {
  if (track.codec_type === 0) {
    const parts = [];
    if (track.width && track.height) parts.push(`${track.width}×${track.height}`);
    if (track.fps) {
      // A measured rate (24.98) is shown as the nominal one it is within 0.1 of (25).
      const fps = Number(track.fps);
      const near = Math.round(fps);
      parts.push(`${Math.abs(fps - near) < 0.1 ? near : fps.toFixed(2)} fps`);
    }
    return parts.join(' · ');
  }
  const parts = [];
  if (track.sample_rate) parts.push(`${Number(track.sample_rate) / 1000} kHz`);
  if (track.channels) parts.push(`${track.channels} ch`);
  return parts.join(' · ');
}
