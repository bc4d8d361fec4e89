// The live view of a palisade simulation. It reads the run's event log from /events (one
// record per server-sent event, from the start of the run) and draws the state at the
// scrubber's time: every record up to that time, folded in order. Plain JavaScript, no
// library, nothing loaded from anywhere else.
'use strict';

// A graph of more members than this is drawn as a matrix instead.
const GRAPH_LIMIT = 60;
const STATE_ORDER = ['partitioned', 'blocked', 'refused', 'dialing', 'idle', 'down'];
const COLORS = {
  connected: '#2e9d57', dialing: '#e0a526', refused: '#d0572f', partitioned: '#7a4fd6',
  blocked: '#222222', idle: '#e6e8eb', down: '#9aa0a6', self: '#ffffff',
};

const view = {
  records: [],
  times: [],
  start: null,
  live: null,
  follow: true,
  at: 0,
  selected: null,
  mode: 'auto',
  finished: false,
  pending: false,
};

const $ = (id) => document.getElementById(id);

function emptyState() {
  return {
    links: new Map(),
    counters: new Map(),
    sample: null,
    up: [],
    end: null,
    groups: null,
    applied: 0,
    at: 0,
  };
}

function key(from, to) {
  return from + ',' + to;
}

// Folds one record into `state`.
function apply(state, record) {
  switch (record.type) {
    case 'start':
      state.up = record.nodes.map(() => true);
      break;
    case 'fault':
      if (record.kind === 'partition') state.groups = record.groups;
      if (record.kind === 'heal') state.groups = null;
      if (record.kind === 'crash') state.up[record.node] = false;
      if (record.kind === 'restart') state.up[record.node] = true;
      break;
    case 'link':
      state.links.set(key(record.from, record.to), record);
      break;
    case 'sample':
      state.sample = record;
      for (const link of record.links) state.counters.set(key(link.from, link.to), link);
      for (const node of record.nodes) state.up[node.node] = node.up;
      break;
    case 'end':
      state.end = record;
      break;
  }
  state.at = Math.max(state.at, record.at_seconds || 0);
  state.applied += 1;
}

// The state at `time`: every record at or before it.
function stateAt(time) {
  if (view.follow || time >= lastTime()) return view.live;
  const state = emptyState();
  for (let i = 0; i < view.records.length && view.times[i] <= time; i++) {
    apply(state, view.records[i]);
  }
  state.at = time;
  return state;
}

function lastTime() {
  return view.times.length ? view.times[view.times.length - 1] : 0;
}

function members() {
  return view.start ? view.start.nodes.filter((node) => node.member).length : 0;
}

// The state of the pair {a, b} as both ends see it.
function pairState(state, a, b) {
  if (!state.up[a] || !state.up[b]) return 'down';
  const ab = state.links.get(key(a, b));
  const ba = state.links.get(key(b, a));
  const states = [ab ? ab.state : 'idle', ba ? ba.state : 'idle'];
  if (states[0] === 'connected' && states[1] === 'connected') return 'connected';
  for (const candidate of STATE_ORDER) {
    if (states.includes(candidate)) return candidate;
  }
  return states.includes('connected') ? 'dialing' : 'idle';
}

function sum(values) {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

function sumMap(map) {
  return sum(Object.values(map || {}));
}

function bytes(count) {
  if (count >= 1 << 30) return (count / (1 << 30)).toFixed(1) + ' GiB';
  if (count >= 1 << 20) return (count / (1 << 20)).toFixed(1) + ' MiB';
  if (count >= 1 << 10) return (count / (1 << 10)).toFixed(1) + ' KiB';
  return count + ' B';
}

function seconds(value) {
  return value === null || value === undefined ? '-' : value.toFixed(1) + ' s';
}

function scheduleRender() {
  if (view.pending) return;
  view.pending = true;
  requestAnimationFrame(() => {
    view.pending = false;
    render();
  });
}

function render() {
  if (!view.start) return;
  const time = view.follow ? lastTime() : view.at;
  const state = stateAt(time);
  const scenario = view.start.scenario;
  $('clock').textContent = seconds(state.at);
  const scrubber = $('scrubber');
  scrubber.max = String(Math.max(scenario.duration_seconds, lastTime()));
  scrubber.value = String(view.follow ? state.at : view.at);
  $('scrub-time').textContent = seconds(state.at);
  $('follow').disabled = view.follow;
  renderHeader(state);
  renderCounters(state);
  const graph = view.mode === 'graph' || (view.mode === 'auto' && members() <= GRAPH_LIMIT);
  // `toggleAttribute`, not `hidden`: an SVG element has no `hidden` property.
  $('graph').toggleAttribute('hidden', !graph);
  $('matrix').toggleAttribute('hidden', graph);
  if (graph) renderGraph(state);
  else renderMatrix(state);
  renderTimeline(state.at);
  renderDetail(state);
}

function renderHeader(state) {
  const status = $('status');
  const scrubbed = !view.follow && view.at < lastTime();
  if (view.finished && !scrubbed) {
    status.textContent = 'finished';
    status.className = 'badge finished';
  } else if (scrubbed) {
    status.textContent = 'looking back at ' + seconds(state.at);
    status.className = 'badge finished';
  } else {
    status.textContent = 'live';
    status.className = 'badge live';
  }
  const violations = state.end ? state.end.violations : state.sample && state.sample.violations;
  const invariants = $('invariants');
  if (!violations) {
    invariants.textContent = 'invariants: waiting';
    invariants.className = 'badge';
  } else if (sumMap(violations) > 0) {
    const broken = Object.entries(violations).filter(([, count]) => count > 0);
    invariants.textContent = 'invariants VIOLATED: ' +
      broken.map(([name, count]) => name + ' ' + count).join(', ');
    invariants.className = 'badge bad';
  } else {
    invariants.textContent = 'invariants held';
    invariants.className = 'badge good';
  }
}

function renderCounters(state) {
  const n = members();
  let connected = 0;
  let cut = 0;
  let possible = 0;
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const pair = pairState(state, a, b);
      if (pair === 'connected') connected += 1;
      if (pair === 'partitioned') cut += 1;
      if (state.up[a] && state.up[b]) possible += 1;
    }
  }
  $('connected-links').textContent = String(connected);
  $('possible-links').textContent = String(possible);
  $('cut-links').textContent = String(cut);
  const nodes = state.sample ? state.sample.nodes : [];
  $('delivered').textContent = String(sum(nodes.map((node) => node.delivered)));
  let ok = 0;
  let failed = 0;
  for (const node of nodes) {
    for (const [kind, count] of Object.entries(node.handshakes)) {
      if (kind.includes('failed')) failed += count;
      else ok += count;
    }
  }
  $('handshakes-ok').textContent = String(ok);
  $('handshakes-failed').textContent = String(failed);
  $('closed').textContent = String(sum(nodes.map((node) => sumMap(node.connections_closed))));
  const end = state.end;
  $('sent').textContent = end ? String(end.messages.sent) : '-';
  $('latency').textContent = end
    ? end.latency.p50_ms.toFixed(1) + ' ms / ' + end.latency.p99_ms.toFixed(1) + ' ms'
    : '-';
  $('restored').textContent = end ? seconds(end.mesh.restored_after_seconds) : '-';
  const consensus = state.sample && state.sample.consensus;
  for (const row of document.querySelectorAll('tr.consensus')) row.hidden = !consensus;
  if (consensus) {
    $('finalized').textContent = consensus.finalized_views + ' (' + consensus.highest_view + ')';
    $('finalization-latency').textContent =
      consensus.latency_p50_ms.toFixed(1) + ' ms / ' + consensus.latency_p99_ms.toFixed(1) + ' ms';
  }
  $('digest').textContent = end ? end.digest : '-';
  const lost = $('not-delivered');
  lost.replaceChildren();
  if (end) {
    for (const [reason, count] of Object.entries(end.messages.not_delivered)) {
      if (count === 0) continue;
      const line = document.createElement('div');
      line.textContent = 'not delivered, ' + reason.replaceAll('_', ' ') + ': ' + count;
      lost.append(line);
    }
  }
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [attribute, value] of Object.entries(attributes)) {
    element.setAttribute(attribute, String(value));
  }
  return element;
}

// Members on a circle, outsiders on a ring outside it.
function positions() {
  const nodes = view.start.nodes;
  const n = members();
  const outsiders = nodes.length - n;
  return nodes.map((node, index) => {
    const ring = node.member ? 420 : 520;
    const count = node.member ? n : outsiders;
    const place = node.member ? index : index - n;
    const angle = (2 * Math.PI * place) / Math.max(count, 1) - Math.PI / 2 + (node.member ? 0 : 0.3);
    return [ring * Math.cos(angle), ring * Math.sin(angle)];
  });
}

function renderGraph(state) {
  const graph = $('graph');
  const nodes = view.start.nodes;
  const where = positions();
  const radius = Math.max(10, Math.min(30, 900 / Math.max(nodes.length, 1)));
  graph.replaceChildren();
  const lines = svg('g', {});
  const n = members();
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const pair = pairState(state, a, b);
      if (pair === 'idle' || pair === 'down') continue;
      const line = svg('line', {
        x1: where[a][0], y1: where[a][1], x2: where[b][0], y2: where[b][1],
        class: pair, 'data-link': a + '-' + b,
      });
      const title = svg('title', {});
      title.textContent = a + ' - ' + b + ': ' + pair;
      line.append(title);
      lines.append(line);
    }
  }
  // An outsider's attempts towards the members it tries.
  for (let o = n; o < nodes.length; o++) {
    for (let b = 0; b < n; b++) {
      const link = state.links.get(key(o, b));
      if (!link || link.state === 'idle' || link.state === 'down') continue;
      lines.append(svg('line', {
        x1: where[o][0], y1: where[o][1], x2: where[b][0], y2: where[b][1],
        class: link.state, 'data-outsider-link': o + '-' + b,
      }));
    }
  }
  graph.append(lines);
  nodes.forEach((node, index) => {
    const classes = [node.member ? 'member' : 'outsider'];
    if (!state.up[index]) classes.push('down');
    if (view.selected === index) classes.push('selected');
    const circle = svg('circle', {
      cx: where[index][0], cy: where[index][1], r: radius,
      class: classes.join(' '), 'data-node': index,
    });
    const title = svg('title', {});
    title.textContent = 'node ' + index + (node.member ? '' : ' (outsider)') + ' ' + node.address;
    circle.append(title);
    circle.addEventListener('click', () => select(index));
    graph.append(circle);
    if (radius >= 14) {
      const label = svg('text', { x: where[index][0], y: where[index][1] });
      label.textContent = String(index);
      graph.append(label);
    }
  });
}

function renderMatrix(state) {
  const canvas = $('matrix');
  const nodes = view.start.nodes.length;
  const cell = Math.max(1, Math.floor(canvas.width / Math.max(nodes, 1)));
  const context = canvas.getContext('2d');
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  for (let from = 0; from < nodes; from++) {
    for (let to = 0; to < nodes; to++) {
      let color = COLORS.idle;
      if (from === to) color = COLORS.self;
      else if (!state.up[from]) color = COLORS.down;
      else {
        const link = state.links.get(key(from, to));
        if (link) color = COLORS[link.state] || COLORS.idle;
      }
      context.fillStyle = color;
      context.fillRect(to * cell, from * cell, cell, cell);
    }
  }
  if (view.selected !== null) {
    context.strokeStyle = '#f2b705';
    context.lineWidth = 2;
    context.strokeRect(0, view.selected * cell, nodes * cell, cell);
  }
}

function select(index) {
  view.selected = index;
  scheduleRender();
}

function listInto(list, entries) {
  list.replaceChildren();
  for (const [name, count] of Object.entries(entries || {})) {
    const item = document.createElement('li');
    item.textContent = name + ': ' + count;
    list.append(item);
  }
}

function renderDetail(state) {
  const index = view.selected;
  const info = index === null ? undefined : view.start.nodes[index];
  $('detail-hint').hidden = info !== undefined;
  $('detail-body').hidden = info === undefined;
  if (info === undefined) return;
  $('detail-node').textContent = index + (info.member ? '' : ' (outsider)');
  const counters = state.sample && state.sample.nodes[index];
  const summary = [
    state.up[index] ? 'up' : 'DOWN',
    info.address,
    'key ' + info.key.slice(0, 16) + '...',
  ];
  if (counters) {
    summary.push('incarnation ' + counters.incarnation);
    summary.push(counters.connected_peers + ' peers connected');
    summary.push('delivered ' + counters.delivered);
    if (counters.finalized_view !== undefined) summary.push('finalized view ' + counters.finalized_view);
    if (counters.rtt_ms !== undefined) summary.push('median rtt ' + counters.rtt_ms.toFixed(1) + ' ms');
    summary.push('sent ' + bytes(counters.bytes_sent) + ', received ' + bytes(counters.bytes_received));
  }
  $('detail-summary').textContent = summary.join(' | ');
  const body = document.querySelector('#detail-peers tbody');
  body.replaceChildren();
  for (let to = 0; to < view.start.nodes.length; to++) {
    const link = state.links.get(key(index, to));
    if (!link) continue;
    const traffic = state.counters.get(key(index, to)) || {};
    const cells = [
      String(to),
      state.up[index] ? link.state + (link.closed_reason ? ' (closed: ' + link.closed_reason + ')' : '') : 'down',
      traffic.rtt_ms === undefined ? '-' : traffic.rtt_ms.toFixed(1),
      (traffic.messages_sent || 0) + ' (' + bytes(traffic.bytes_sent || 0) + ')',
      (traffic.messages_received || 0) + ' (' + bytes(traffic.bytes_received || 0) + ')',
      String(traffic.delivered || 0),
      bytes(traffic.queued_bytes || 0),
      Object.entries(traffic.dropped || {}).map(([why, count]) => why + ' ' + count).join(', ') || '0',
    ];
    const row = document.createElement('tr');
    row.dataset.peer = String(to);
    cells.forEach((text, column) => {
      const cell = document.createElement('td');
      cell.textContent = text;
      if (column === 1) cell.className = 'state-' + link.state;
      row.append(cell);
    });
    body.append(row);
  }
  listInto($('detail-handshakes'), counters && counters.handshakes);
  listInto($('detail-closed'), counters && counters.connections_closed);
  listInto($('detail-messages'), counters && counters.messages);
}

// The scenario's faults as spans over the run, and where the view is.
function renderTimeline(now) {
  const timeline = $('timeline');
  const scenario = view.start.scenario;
  const duration = Math.max(scenario.duration_seconds, 1e-9);
  const x = (seconds) => (1000 * seconds) / duration;
  timeline.replaceChildren();
  const faults = scenario.faults.slice().sort((a, b) => a.at_seconds - b.at_seconds);
  const list = $('fault-list');
  list.replaceChildren();
  faults.forEach((fault, index) => {
    let until = null;
    let row = 0;
    if (fault.kind === 'partition') {
      const heal = faults.slice(index + 1).find((other) => other.kind === 'heal' || other.kind === 'partition');
      until = heal ? heal.at_seconds : duration;
    } else if (fault.kind === 'crash') {
      const restart = faults.slice(index + 1).find((other) => other.kind === 'restart' && other.node === fault.node);
      until = restart ? restart.at_seconds : duration;
      row = 1;
    } else if (fault.kind === 'resets') {
      until = fault.until_seconds;
      row = 2;
    }
    if (until !== null) {
      const span = svg('rect', {
        x: x(fault.at_seconds), y: 2 + row * 12, width: Math.max(2, x(until) - x(fault.at_seconds)), height: 10,
        class: fault.kind, 'data-fault': index,
      });
      const title = svg('title', {});
      title.textContent = describe(fault) + ' until ' + seconds(until);
      span.append(title);
      timeline.append(span);
    }
    const item = document.createElement('li');
    item.textContent = seconds(fault.at_seconds) + ' ' + describe(fault);
    list.append(item);
  });
  timeline.append(svg('line', { x1: x(now), x2: x(now), y1: 0, y2: 40, class: 'now' }));
}

function describe(fault) {
  switch (fault.kind) {
    case 'partition':
      return 'partition ' + fault.groups.map((group) => '[' + group.join(' ') + ']').join(' | ');
    case 'heal':
      return 'heal';
    case 'crash':
      return 'crash node ' + fault.node;
    case 'restart':
      return 'restart node ' + fault.node;
    case 'resets':
      return 'resets ' + fault.per_second + '/s until ' + seconds(fault.until_seconds);
    default:
      return fault.kind;
  }
}

function receive(record) {
  if (record.type === 'start') {
    view.start = record;
    view.live = emptyState();
    $('seed').textContent = String(record.seed);
    $('member-count').textContent = String(members());
    $('outsider-count').textContent = String(record.nodes.length - members());
    $('duration').textContent = seconds(record.scenario.duration_seconds);
  }
  view.records.push(record);
  view.times.push(record.at_seconds || 0);
  if (view.live) apply(view.live, record);
  if (record.type === 'end') {
    view.finished = true;
  }
  scheduleRender();
}

function reset() {
  view.records = [];
  view.times = [];
  view.start = null;
  view.live = null;
}

function connect() {
  const source = new EventSource('/events');
  source.onopen = () => {
    // A reconnection reads the log from its start again.
    reset();
  };
  source.onmessage = (event) => {
    const record = JSON.parse(event.data);
    receive(record);
  };
  source.addEventListener('done', () => {
    // The whole log has been read: nothing more will come.
    view.finished = true;
    source.close();
    scheduleRender();
  });
  source.onerror = () => {
    if (view.finished) source.close();
  };
}

// `#t=SECONDS` in the address opens the run at that moment, `&node=N` with node N selected.
function fromAddress() {
  const parameters = new URLSearchParams(location.hash.slice(1));
  const at = Number(parameters.get('t'));
  if (parameters.has('t') && Number.isFinite(at) && at >= 0) {
    view.follow = false;
    view.at = at;
    $('scrubber').value = String(at);
  }
  const node = Number(parameters.get('node'));
  if (parameters.has('node') && Number.isInteger(node) && node >= 0) view.selected = node;
}

function init() {
  fromAddress();
  $('scrubber').addEventListener('input', (event) => {
    view.follow = false;
    view.at = Number(event.target.value);
    scheduleRender();
  });
  $('follow').addEventListener('click', () => {
    view.follow = true;
    scheduleRender();
  });
  $('view-graph').addEventListener('click', () => {
    view.mode = 'graph';
    scheduleRender();
  });
  $('view-matrix').addEventListener('click', () => {
    view.mode = 'matrix';
    scheduleRender();
  });
  $('matrix').addEventListener('click', (event) => {
    if (!view.start) return;
    const canvas = event.target;
    const bounds = canvas.getBoundingClientRect();
    const cell = Math.max(1, Math.floor(canvas.width / view.start.nodes.length));
    const row = Math.floor(((event.clientY - bounds.top) * canvas.height) / bounds.height / cell);
    if (row >= 0 && row < view.start.nodes.length) select(row);
  });
  connect();
}

document.addEventListener('DOMContentLoaded', init);
