// The live page of one palisade node: a table of its peers, redrawn from each snapshot that
// /events sends (one a second). Plain JavaScript, nothing loaded from anywhere else.
'use strict';

const $ = (id) => document.getElementById(id);

function bytes(count) {
  if (count >= 1 << 30) return (count / (1 << 30)).toFixed(1) + ' GiB';
  if (count >= 1 << 20) return (count / (1 << 20)).toFixed(1) + ' MiB';
  if (count >= 1 << 10) return (count / (1 << 10)).toFixed(1) + ' KiB';
  return count + ' B';
}

function duration(seconds) {
  if (seconds === undefined) return '-';
  if (seconds < 60) return seconds.toFixed(0) + ' s';
  if (seconds < 3600) return (seconds / 60).toFixed(1) + ' min';
  return (seconds / 3600).toFixed(1) + ' h';
}

function render(snapshot) {
  $('key').textContent = snapshot.key.slice(0, 16) + '...';
  $('key').title = snapshot.key;
  $('connected').textContent = String(snapshot.connected);
  $('tracked').textContent = String(snapshot.peers.length);
  $('updated').textContent = new Date(snapshot.at_seconds * 1000).toLocaleTimeString();
  const body = document.querySelector('#peers tbody');
  body.replaceChildren();
  for (const peer of snapshot.peers) {
    const drops = Object.entries(peer.dropped).map(([why, count]) => why.replaceAll('_', ' ') + ' ' + count);
    const cells = [
      [peer.key.slice(0, 16) + '...', 'key'],
      [peer.address || '-', ''],
      [peer.state + (peer.state === 'connected' ? (peer.dialed ? ' (dialed)' : ' (accepted)') : ''), 'state-' + peer.state],
      [duration(peer.connected_seconds), ''],
      [peer.rtt_ms === undefined ? '-' : peer.rtt_ms.toFixed(2) + ' ms', ''],
      [peer.messages_sent + ' (' + bytes(peer.bytes_sent) + ')', 'sent'],
      [peer.messages_received + ' (' + bytes(peer.bytes_received) + ')', 'received'],
      [bytes(peer.queued_bytes), ''],
      [drops.join(', ') || '0', 'drops'],
      [String(peer.connections), ''],
      [peer.last_closed || '-', ''],
    ];
    const row = document.createElement('tr');
    row.dataset.peer = peer.key;
    for (const [text, name] of cells) {
      const cell = document.createElement('td');
      cell.textContent = text;
      if (name) cell.className = name;
      if (name === 'key') cell.title = peer.key;
      row.append(cell);
    }
    body.append(row);
  }
}

function connect() {
  const source = new EventSource('/events');
  source.onmessage = (event) => {
    $('status').textContent = 'live';
    $('status').className = 'badge live';
    render(JSON.parse(event.data));
  };
  source.onerror = () => {
    // EventSource reconnects by itself; say so meanwhile.
    $('status').textContent = 'reconnecting';
    $('status').className = 'badge lost';
  };
}

document.addEventListener('DOMContentLoaded', connect);
