// SPDX-License-Identifier: Apache-2.0
// kiln's page: lists the windows kiln serves, builds the profile URL from
// the filters, and hands it to speedscope in the frame below. It polls
// /api/windows, and follows the newest window unless one is picked.
'use strict';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const state = { newest: '', url: '', viewer: true, loads: 0 };

function filters() {
  const query = new URLSearchParams();
  const tid = $('tid').value.trim();
  const container = $('container').value.trim();
  const label = $('label').value.trim();
  if ($('pid').value) query.set('pid', $('pid').value);
  if (/^[0-9]+$/.test(tid)) query.set('tid', tid);
  if (container) query.set('container', container);
  if (label.includes('=')) query.set('label', label);
  return query;
}

// The window (or minutes) shown, as /profiles/ and /api/processes name them.
function selection() {
  const query = filters();
  const picked = $('window').value;
  const minutes = $('range').value;
  let path;
  if (picked) {
    path = '/profiles/' + encodeURIComponent(picked);
  } else if (minutes !== '0') {
    path = '/profiles/last';
    query.set('minutes', minutes);
    query.set('kind', $('kind').value);
  } else {
    path = '/profiles/latest';
    query.set('kind', $('kind').value);
  }
  return { path, query };
}

function profileURL() {
  const { path, query } = selection();
  const text = query.toString();
  return text ? path + '?' + text : path;
}

function describe() {
  const picked = $('window').value;
  const minutes = $('range').value;
  const what = picked || (minutes !== '0' ? `last ${minutes} min of ${$('kind').value}` : state.newest || 'latest');
  const pid = $('pid').value ? `, pid ${$('pid').value}` : '';
  return what + pid;
}

function showProfile(force) {
  const url = profileURL();
  $('pprof').href = url;
  $('pprof-command').textContent = `go tool pprof ${location.origin}${url}`;
  if (!state.viewer || (!force && url === state.url)) return;
  state.url = url;
  state.loads++;
  const title = 'kiln: ' + describe();
  // A new query each time: speedscope reads its hash only when it loads.
  $('viewer').src = `/viewer/index.html?load=${state.loads}#profileURL=${encodeURIComponent(url)}&title=${encodeURIComponent(title)}`;
  document.body.dataset.shown = url;
  document.body.dataset.loads = String(state.loads);
}

async function loadProcesses() {
  const { query } = selection();
  query.delete('pid');
  const picked = $('window').value;
  if (picked) query.set('window', picked);
  const response = await fetch('/api/processes?' + query.toString());
  if (!response.ok) return;
  const answer = await response.json();
  const select = $('pid');
  const keep = select.value;
  const total = answer.processes.reduce((sum, p) => sum + p.value, 0) || 1;
  select.replaceChildren(new Option('all processes', ''));
  for (const p of answer.processes.slice(0, 300)) {
    const share = (100 * p.value / total).toFixed(1);
    const where = p.container ? ` [${p.container.slice(0, 12)}]` : '';
    select.add(new Option(`${p.pid} ${p.comm}${where} (${share}%)`, String(p.pid)));
  }
  select.value = keep;
  if (select.value !== keep) {
    // The process is gone from this selection: keep it chosen all the same.
    select.add(new Option(`${keep} (no samples here)`, keep));
    select.value = keep;
  }
}

function updateWindows(answer) {
  const select = $('window');
  const picked = select.value;
  const kind = $('kind').value;
  const windows = answer.windows.filter((w) => w.kind === kind);
  select.replaceChildren(new Option('latest, following', ''));
  for (const w of windows) {
    const start = new Date(w.start_ns / 1e6).toISOString().replace('.000Z', 'Z');
    select.add(new Option(`${start} (${Math.ceil(w.bytes / 1024)} KiB)`, w.name));
  }
  select.value = picked;
  document.body.dataset.windows = String(windows.length);
  const newest = windows.length ? windows[0].name : '';
  const changed = newest !== state.newest;
  state.newest = newest;
  $('status').textContent = windows.length
    ? `${windows.length} ${kind === 'cpu' ? 'CPU' : 'off-CPU'} windows${answer.in_memory ? ' kept in memory' : ''}; newest ${newest}. Showing ${describe()}.`
    : `No ${kind === 'cpu' ? 'CPU' : 'off-CPU'} window yet: the first is written when a window ends.`;
  return changed;
}

async function poll() {
  try {
    const response = await fetch('/api/windows');
    if (response.ok) {
      const answer = await response.json();
      state.viewer = answer.viewer;
      $('missing').hidden = answer.viewer;
      $('viewer').hidden = !answer.viewer;
      const changed = updateWindows(answer);
      // Following the newest: a new window shows itself, the page stays.
      if (changed && state.newest && !$('window').value) {
        showProfile(true);
        loadProcesses();
      }
    }
  } catch (error) {
    $('status').textContent = `kiln does not answer: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

function onChange() {
  showProfile(false);
  loadProcesses();
}

for (const id of ['kind', 'range', 'window', 'pid']) $(id).addEventListener('change', onChange);
for (const id of ['tid', 'container', 'label']) $(id).addEventListener('change', onChange);
$('kind').addEventListener('change', () => { state.newest = ''; });
poll();
