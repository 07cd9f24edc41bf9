// One <video> playing a live stream over HTTP-FLV (mpegts.js), HLS (hls.js, or the
// browser's own HLS where it has one) or WebRTC (WHEP: the browser's own RTCPeerConnection). The player libraries are loaded the first time they are
// needed; both are vendored under assets/vendor/ (see the .md beside each).

const scripts = new Map();

/** Loads a classic script once; resolves when it has run. */
function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const el = document.createElement('script');
      el.src = src;
      el.onload = resolve;
      el.onerror = () => {
        scripts.delete(src);
        reject(new Error(`could not load ${src}`));
      };
      document.head.append(el);
    }));
  }
  return scripts.get(src);
}

export class Player {
  /**
   * @param {HTMLVideoElement} video
   * @param {(message: string) => void} onError  a playback failure, in words
   */
  constructor(video, onError) {
    this.video = video;
    this.onError = onError;
    this.engine = null;
  }

  /** Plays `url` (an HTTP-FLV URL) with mpegts.js. */
  async playFlv(url) {
    this.stop();
    await loadScript('/assets/vendor/mpegts.js');
    const { mpegts } = window;
    if (!mpegts.getFeatureList().mseLivePlayback) {
      this.onError('this browser has no Media Source Extensions for live FLV');
      return;
    }
    const engine = mpegts.createPlayer(
      { type: 'flv', isLive: true, url },
      { enableStashBuffer: false, liveBufferLatencyChasing: true, lazyLoad: false },
    );
    engine.on(mpegts.Events.ERROR, (type, detail) => this.onError(`${type}: ${detail}`));
    engine.attachMediaElement(this.video);
    engine.load();
    this.engine = { kind: 'flv', destroy: () => engine.destroy() };
    this.start();
  }

  /** Plays `url` (an HLS playlist) with hls.js, or natively where the browser plays HLS. */
  async playHls(url) {
    this.stop();
    await loadScript('/assets/vendor/hls.min.js');
    const { Hls } = window;
    if (Hls.isSupported()) {
      const engine = new Hls({ liveDurationInfinity: true });
      engine.on(Hls.Events.ERROR, (_event, data) => {
        if (data.fatal) this.onError(`${data.type}: ${data.details}`);
      });
      engine.loadSource(url);
      engine.attachMedia(this.video);
      this.engine = { kind: 'hls', destroy: () => engine.destroy() };
    } else if (this.video.canPlayType('application/vnd.apple.mpegurl')) {
      this.video.src = url;
      this.engine = { kind: 'hls', destroy: () => this.video.removeAttribute('src') };
    } else {
      this.onError('this browser plays HLS neither natively nor through Media Source Extensions');
      return;
    }
    this.start();
  }

  /** Plays `url` (a WHEP endpoint) with an RTCPeerConnection; DELETEs the session on stop. */
  async playWebRtc(url) {
    this.stop();
    const pc = new RTCPeerConnection();
    let location = null;
    this.engine = {
      kind: 'webrtc',
      destroy: () => {
        pc.close();
        if (location) fetch(location, { method: 'DELETE' }).catch(() => {});
        this.video.srcObject = null;
      },
    };
    const engine = this.engine;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      this.video.srcObject = stream;
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === 'failed') this.onError('WebRTC: ICE failed');
    };
    await pc.setLocalDescription(await pc.createOffer());
    const resp = await fetch(url, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    const answer = await resp.text();
    if (resp.status !== 201) {
      this.onError(`WHEP ${resp.status}: ${answer}`);
      return;
    }
    location = resp.headers.get('Location');
    if (this.engine !== engine) {
      // Stopped while the offer was out: end the session just made.
      if (location) fetch(location, { method: 'DELETE' }).catch(() => {});
      return;
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    this.start();
  }

  start() {
    const played = this.video.play();
    if (played && played.catch) {
      played.catch((e) => {
        // A newer load() replacing this one interrupts play(): not a failure.
        if (e.name !== 'AbortError') this.onError(`play(): ${e.message}`);
      });
    }
  }

  /** Stops and releases the current engine. */
  stop() {
    if (this.engine) {
      this.engine.destroy();
      this.engine = null;
    }
    this.video.srcObject = null;
    this.video.removeAttribute('src');
    this.video.load();
  }
}
