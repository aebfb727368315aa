// The operator view: queue figures and the audit trail, read-only. Keeps nothing in browser storage
// and sends no cookie.
'use strict';
(function () {
  // This page's session secret, from the page itself: kept in memory only and sent as a header (never
  // a cookie, which every other port of this host would receive too) with every request.
  const meta = document.querySelector('meta[name="idgate-session"]');
  const session = meta ? meta.content : '';
  if (meta) meta.remove();
  history.replaceState(null, '', '/'); // the launch URL is used up: out of the address bar
  const REFUSED = 'This console refused the request (403): this page is no longer open there. ' +
    'Open the newest URL the review console printed.';
  const $ = (id) => document.getElementById(id);
  let next = '';

  async function get(path) {
    const r = await fetch(path, { cache: 'no-store', credentials: 'omit', headers: { 'X-Idgate-Session': session } });
    if (r.status === 403) throw new Error(REFUSED);
    return r.json();
  }

  function age(seconds) {
    if (seconds < 120) return seconds + ' s';
    if (seconds < 7200) return Math.floor(seconds / 60) + ' min';
    return Math.floor(seconds / 3600) + ' h';
  }

  async function stats() {
    try {
      const s = await get('/api/state');
      $('who').textContent = 'signed in as ' + s.principal;
      const g = $('gateway');
      g.hidden = s.gateway.up && !s.gateway.message;
      g.textContent = s.gateway.up ? s.gateway.message : 'The gateway is down: ' + s.gateway.message;
      $('stat-pending').textContent = s.stats ? s.stats.pending : 'unknown';
      $('stat-claimed').textContent = s.stats ? s.stats.claimed : 'unknown';
      $('stat-oldest').textContent = s.stats && s.stats.pending ? age(s.stats.oldest_pending_age_seconds) : '–';
    } catch (e) {
      $('gateway').hidden = false;
      $('gateway').textContent = 'The review console does not answer: ' + e.message;
    }
  }

  let generation = 0; // only the newest request may fill the table

  async function load(append) {
    const mine = ++generation;
    const q = new URLSearchParams({ case_id: $('case_id').value.trim(), principal: $('principal').value.trim() });
    if (append) q.set('page_token', next);
    try {
      const page = await get('/api/audit?' + q.toString());
      if (mine !== generation) return;
      if (page.ok === false) { $('notice').textContent = page.message; return; }
      const body = $('events');
      if (!append) body.textContent = '';
      page.events.forEach((e) => {
        const tr = document.createElement('tr');
        const when = new Date(e.at_unix * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
        [when, e.actor, e.action, e.case_id, e.detail].forEach((v) => {
          const td = document.createElement('td');
          td.textContent = v;
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      next = page.next_page_token;
      $('more').disabled = !next;
      $('notice').textContent = body.children.length + ' events shown' + (next ? '; more available' : '');
    } catch (e) {
      $('notice').textContent = e.message;
    }
  }

  $('filters').addEventListener('submit', (e) => { e.preventDefault(); load(false); });
  $('more').addEventListener('click', () => load(true));
  setInterval(stats, 5000);
  stats();
  load(false);
})();
