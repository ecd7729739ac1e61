/* console.js - keeps the Chronik console live: every second it reads
 * GET /api/console (JSON, described atop src/broker/console.c) and redraws
 * the page the server rendered, with the same sections, ids and data
 * attributes, and draws the produce and fetch rates as small SVG charts
 * from the counters' growth. It only builds elements and sets their text:
 * nothing from the server is ever parsed as HTML. */
'use strict';
(function () {
  const REFRESH_MS = 1000;
  const POINTS = 60;
  const SVG = 'http://www.w3.org/2000/svg';
  const main = document.getElementById('console');
  const rates = [
    { key: 'records', title: 'Produced (records/s)', points: [] },
    { key: 'bytes_in', title: 'Received (bytes/s)', points: [] },
    { key: 'bytes_out', title: 'Sent to fetchers (bytes/s)', points: [] },
  ];
  let last = null; /* {at, counters} of the previous answer */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  const num = (v) => el('td', { class: 'num' }, v < 0 || v === undefined ? '-' : v);

  function table(cols, rows) {
    const head = el('tr', {}, ...cols.map((c) => el('th', {}, c)));
    return el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows));
  }

  function section(id, title, ...kids) {
    return el('section', { id: id }, el('h2', {}, title), ...kids);
  }

  function header(d) {
    const s = d.status;
    const h = el('p', { id: 'health', class: s.healthy ? 'ok' : 'bad' },
      (s.healthy ? 'healthy' : 'degraded') + ', seen from node ' + s.node.node_id);
    const live = el('span', { id: 'live' }, 'live');
    return el('header', {}, el('h1', {}, 'Chronik ', el('span', { id: 'cluster' }, s.node.cluster_id)), h, live);
  }

  function problems(d) {
    if (!d.problems.length) return section('problems', 'Problems', el('p', { class: 'none' }, 'None.'));
    return section('problems', 'Problems', el('ul', {}, ...d.problems.map((p) => el('li', {}, p))));
  }

  function quorum(d) {
    const q = d.status.quorum;
    const rows = q.voters.map((v) => el('tr', {},
      el('td', {}, v.id + (v.id === q.leader_id ? ' (leader)' : '')),
      num(v.log_end_offset), num(v.lag), num(v.last_fetch_ms_ago)));
    return section('quorum', 'Metadata quorum',
      el('p', {}, 'leader ', el('b', {}, q.leader_id), ', epoch ', el('b', {}, q.epoch),
        ', high watermark ' + q.high_watermark + '; this node is ' + q.role),
      table(['Voter', 'Log end', 'Lag', 'Last fetch (ms ago)'], rows));
  }

  function brokers(d) {
    const state = new Map(d.brokers.map((b) => [b.id, b.state]));
    const rows = d.status.brokers.map((b) => {
      const st = state.get(b.id) || 'unknown';
      const eps = (b.endpoints || []).map((e) =>
        el('div', { class: 'endpoint' }, e.name + ' ' + e.host + ':' + e.port + ' (' + e.security_protocol + ')'));
      return el('tr', { 'data-broker': b.id }, el('td', {}, b.id), el('td', {}, b.host + ':' + b.port),
        el('td', {}, ...eps), el('td', { class: 'state-' + st }, st), num(b.last_heartbeat_ms_ago));
    });
    return section('brokers', 'Brokers',
      table(['Broker', 'Address', 'Listeners', 'State', 'Last heartbeat (ms ago)'], rows));
  }

  function topics(d) {
    const parts = d.status.partitions.filter((p) => !p.internal);
    const hidden = d.status.partitions.length - parts.length;
    const rows = parts.map((p) => el('tr', { 'data-topic': p.topic },
      el('td', {}, p.topic), num(p.partition),
      el('td', { class: p.leader < 0 ? 'bad' : '' }, p.leader < 0 ? 'none' : p.leader),
      el('td', {}, p.replicas.join(',')), el('td', {}, p.isr.join(',')), el('td', {}, p.state),
      num(p.high_watermark), num(p.bytes)));
    const s = section('topics', 'Topics',
      table(['Topic', 'Partition', 'Leader', 'Replicas', 'ISR', 'State', 'High watermark', 'Bytes'], rows));
    if (hidden) s.append(el('p', { class: 'note' }, hidden + ' partitions of internal topics not listed.'));
    return s;
  }

  function groups(d) {
    const rows = [];
    for (const g of d.groups) {
      const cells = () => [el('td', {}, g.id), el('td', {}, g.state), num(g.members)];
      if (!g.offsets.length) rows.push(el('tr', { 'data-group': g.id }, ...cells(), el('td'), el('td'), el('td'), el('td')));
      for (const o of g.offsets) {
        rows.push(el('tr', { 'data-group': g.id }, ...cells(), el('td', {}, o.topic + '-' + o.partition),
          num(o.committed), num(o.end), num(o.lag)));
      }
    }
    return section('groups', 'Consumer groups', el('p', { class: 'note' }, 'Groups this node coordinates.'),
      table(['Group', 'State', 'Members', 'Partition', 'Committed', 'End', 'Lag'], rows));
  }

  function chart(r) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + (POINTS - 1) + ' 100');
    svg.setAttribute('preserveAspectRatio', 'none');
    const max = Math.max(1, ...r.points);
    const line = document.createElementNS(SVG, 'polyline');
    const off = POINTS - r.points.length;
    line.setAttribute('points', r.points.map((v, i) => (off + i) + ',' + (98 - (v / max) * 93).toFixed(1)).join(' '));
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(line);
    const now = r.points.length ? Math.round(r.points[r.points.length - 1]) : 0;
    return el('div', { class: 'chart', 'data-rate': r.key },
      el('div', {}, r.title + ': ', el('span', { class: 'now' }, now), ' (peak ' + Math.round(max) + ')'), svg);
  }

  function note_rates(d) {
    const now = performance.now();
    if (last) {
      const secs = Math.max((now - last.at) / 1000, 0.001);
      for (const r of rates) {
        r.points.push(Math.max(0, (d.counters[r.key] - last.counters[r.key]) / secs));
        if (r.points.length > POINTS) r.points.shift();
      }
    }
    last = { at: now, counters: d.counters };
  }

  function render(d) {
    note_rates(d);
    const charts = section('rates', 'Rates (this node, last minute)', el('div', { class: 'charts' }, ...rates.map(chart)));
    main.replaceChildren(header(d), problems(d), quorum(d), brokers(d), charts, topics(d), groups(d));
    main.dataset.updated = String(Date.now());
  }

  async function tick() {
    try {
      const r = await fetch('/api/console', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      render(await r.json());
    } catch (e) {
      const live = document.getElementById('live');
      if (live) {
        live.textContent = 'node unreachable (' + e.message + '), retrying';
        live.className = 'lost';
      }
    } finally {
      setTimeout(tick, REFRESH_MS);
    }
  }

  tick();
})();
