// Config: every key getServerConfig reports, by section, each value editable; the edited keys
// go to setServerConfig in one call and its answer (how many keys changed) is shown as it came.

import * as api from '../api.js';
import { h, replace } from '../dom.js';

export const configView = { title: 'Config', mount };

function mount(root) {
  const filter = h('input', { type: 'search', class: 'input', id: 'config-filter',
    placeholder: 'Filter keys and values', 'aria-label': 'Filter config keys' });
  const summary = h('p', { class: 'muted' }, 'Reading…');
  const pending = h('span', { class: 'muted', id: 'config-pending' });
  const apply = h('button', { class: 'button primary', type: 'button', id: 'config-apply',
    disabled: true }, 'Apply changes');
  const discard = h('button', { class: 'button ghost', type: 'button', disabled: true },
    'Discard');
  const result = h('p', { class: 'banner', id: 'config-result', role: 'status', hidden: true });
  const tbody = h('tbody');
  const table = h('table', { class: 'table config', id: 'config-table' },
    h('thead', null, h('tr', null, h('th', null, 'Key'), h('th', null, 'Value'))), tbody);
  root.append(
    h('header', { class: 'view-head' },
      h('div', null, h('h1', null, 'Config'), summary),
      h('div', { class: 'head-tools' }, filter)),
    h('div', { class: 'card applybar' }, pending, h('div', { class: 'spacer' }), discard, apply),
    result,
    h('section', { class: 'card table-card' }, h('div', { class: 'table-scroll' }, table)));

  /** The values as read, and the edits not yet applied. */
  let values = {};
  const edits = new Map();

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const keys = Object.keys(values).sort((a, b) => {
      const [sa] = a.split('.');
      const [sb] = b.split('.');
      return sa.localeCompare(sb) || a.localeCompare(b);
    });
    const rows = [];
    let section = null;
    for (const key of keys) {
      const value = edits.has(key) ? edits.get(key) : values[key];
      if (needle && !key.toLowerCase().includes(needle) &&
        !String(value).toLowerCase().includes(needle)) continue;
      const dot = key.indexOf('.');
      const sec = dot > 0 ? key.slice(0, dot) : '';
      if (sec !== section) {
        section = sec;
        rows.push(h('tr', { class: 'section-row' }, h('th', { colspan: '2' }, `[${sec}]`)));
      }
      // Secrets are not shown to whoever looks over the operator's shoulder; focus shows them.
      const secret = /secret|token|passw|users$/i.test(key);
      const input = h('input', { class: secret ? 'input mono masked' : 'input mono',
        value: String(value), spellcheck: 'false', 'aria-label': key, dataset: { key },
        autocomplete: 'off' });
      if (secret) {
        input.addEventListener('focus', () => input.classList.remove('masked'));
        input.addEventListener('blur', () => input.classList.add('masked'));
      }
      input.addEventListener('input', () => {
        if (input.value === String(values[key])) edits.delete(key);
        else edits.set(key, input.value);
        input.closest('tr').classList.toggle('edited', edits.has(key));
        counts();
      });
      rows.push(h('tr', { class: edits.has(key) ? 'edited' : null, dataset: { key } },
        h('td', { class: 'mono key' }, h('span', { class: 'muted' }, dot > 0 ? `${sec}.` : ''),
          dot > 0 ? key.slice(dot + 1) : key),
        h('td', null, input)));
    }
    replace(tbody, rows);
    counts();
  }

  function counts() {
    const n = edits.size;
    pending.textContent = n === 0 ? 'No unsaved changes.'
      : `${n} unsaved change${n === 1 ? '' : 's'}: ${[...edits.keys()].join(', ')}`;
    apply.disabled = n === 0;
    discard.disabled = n === 0;
  }

  async function load() {
    try {
      values = await api.serverConfig(true);
      const sections = new Set(Object.keys(values).map((k) => k.split('.')[0]));
      summary.textContent = `${Object.keys(values).length} keys in ${sections.size} sections`;
      render();
    } catch (e) {
      summary.textContent = '';
      result.hidden = false;
      result.className = 'banner error';
      result.textContent = `Could not read the config: ${e.message}`;
    }
  }

  apply.addEventListener('click', async () => {
    const args = Object.fromEntries(edits);
    apply.disabled = true;
    result.hidden = false;
    try {
      const body = await api.act('setServerConfig', args);
      result.className = 'banner ok';
      result.textContent = `setServerConfig: ${body.changed ?? 0} key` +
        `${body.changed === 1 ? '' : 's'} changed (${Object.keys(args).join(', ')}).`;
      edits.clear();
      await load();
    } catch (e) {
      result.className = 'banner error';
      result.textContent = e.message;
      apply.disabled = false;
    }
  });
  discard.addEventListener('click', () => {
    edits.clear();
    render();
  });
  filter.addEventListener('input', render);
  load();
}
