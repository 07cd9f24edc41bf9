// The console's shell: sign-in, the sidebar, hash routing between the views, the theme, and
// the one poll of getMediaList (every 2 s) that the streams view, the live graphs and the
// sidebar's counts share.

import * as api from './api.js';
import { POLL_MS } from './api.js';
import { replace, toast } from './dom.js';
import { streamsView } from './views/streams.js';
import { sessionsView } from './views/sessions.js';
import { recordingsView } from './views/recordings.js';
import { configView } from './views/config.js';
import { proxiesView } from './views/proxies.js';
import { serverView } from './views/server.js';

/** Samples the graphs keep: 2 minutes at one per poll. */
const HISTORY = 60;

const views = {
  streams: streamsView,
  sessions: sessionsView,
  recordings: recordingsView,
  proxies: proxiesView,
  config: configView,
  server: serverView,
};

/**
 * The live figures every view may read: the grouped streams, when they were read, the last
 * error, and the graph samples. Listeners are called after each poll.
 */
class Live {
  constructor() {
    this.streams = [];
    this.readAt = null;
    this.error = null;
    this.history = { bitrate: [], viewers: [] };
    this.listeners = new Set();
    this.timer = null;
  }

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start() {
    if (this.timer === null) {
      this.timer = setInterval(() => this.poll(), POLL_MS);
      this.poll();
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.streams = [];
    this.history = { bitrate: [], viewers: [] };
  }

  /** Reads getMediaList now (also called right after an action changed something). */
  async poll() {
    try {
      const body = await api.call('getMediaList');
      this.streams = api.groupStreams(body.data);
      this.readAt = new Date();
      this.error = null;
      const push = (list, v) => {
        list.push(v);
        if (list.length > HISTORY) list.shift();
      };
      push(this.history.bitrate, this.streams.reduce((n, s) => n + s.bytesSpeed, 0));
      push(this.history.viewers, this.streams.reduce((n, s) => n + s.viewers, 0));
    } catch (e) {
      this.error = e;
    }
    if (this.timer === null) return;
    const count = document.getElementById('count-streams');
    count.textContent = this.error ? '' : String(this.streams.length);
    for (const listener of this.listeners) listener(this);
  }
}

export const live = new Live();

let unmount = null;
let current = null;

function route() {
  const [name] = location.hash.replace(/^#\/?/, '').split('/');
  const view = views[name] ? name : 'streams';
  if (view === current) return;
  if (unmount) unmount();
  current = view;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const root = document.getElementById('view');
  replace(root);
  root.dataset.view = view;
  document.title = `${views[view].title} · ferrostream`;
  unmount = views[view].mount(root, { live }) || null;
}

function showSignIn(message) {
  live.stop();
  if (unmount) unmount();
  unmount = null;
  current = null;
  document.getElementById('shell').hidden = true;
  document.getElementById('signin').hidden = false;
  const error = document.getElementById('signin-error');
  error.hidden = !message;
  error.textContent = message || '';
  document.getElementById('secret').focus();
}

async function showShell() {
  document.getElementById('signin').hidden = true;
  document.getElementById('shell').hidden = false;
  live.start();
  route();
  try {
    const version = await api.call('version');
    const data = version.data || {};
    const parts = [data.serverName || 'ferrostream', data.version || data.branchName]
      .filter(Boolean);
    document.getElementById('server-id').textContent = parts.join(' ');
  } catch {
    // The version is decoration; the views report their own failures.
  }
}

function setUpSignIn() {
  const form = document.getElementById('signin-form');
  const submit = document.getElementById('signin-submit');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = document.getElementById('secret');
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      await api.signIn(input.value);
      input.value = '';
      await showShell();
    } catch (e) {
      showSignIn(e.code === api.Code.AuthFailed ? 'That secret is not right.' : e.message);
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  document.getElementById('signout').addEventListener('click', async () => {
    try {
      await api.signOut();
    } finally {
      showSignIn('');
      toast('Signed out.');
    }
  });
}

const THEMES = ['auto', 'light', 'dark'];

function setUpTheme() {
  const button = document.getElementById('theme');
  const apply = (theme) => {
    if (theme === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    button.textContent = `Theme: ${theme}`;
    window.dispatchEvent(new Event('themechange'));
  };
  let theme = localStorage.getItem('ferrostream.theme');
  if (!THEMES.includes(theme)) theme = 'auto';
  apply(theme);
  button.addEventListener('click', () => {
    theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    localStorage.setItem('ferrostream.theme', theme);
    apply(theme);
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change',
    () => window.dispatchEvent(new Event('themechange')));
}

async function main() {
  setUpTheme();
  setUpSignIn();
  api.setAuthLostHandler(() => {
    if (!document.getElementById('shell').hidden) {
      showSignIn('Your login has ended. Sign in again.');
    }
  });
  window.addEventListener('hashchange', () => {
    if (!document.getElementById('shell').hidden) route();
  });
  try {
    const state = await api.signedIn();
    if (state.ok) await showShell();
    else if (state.body.code === api.Code.AuthFailed) showSignIn('');
    else showSignIn(state.body.msg || `The server answered code ${state.body.code}.`);
  } catch (e) {
    showSignIn(e.message);
  }
}

main();
