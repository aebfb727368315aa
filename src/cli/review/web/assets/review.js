// The reviewer's screen. Talks only to the console that served it; keeps nothing in any browser
// storage and sends no cookie; every request asks for no caching.
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
  const figures = Array.from(document.querySelectorAll('.images figure'));
  const view = figures.map(() => ({ zoom: 1, rot: 0 }));
  let state = null;        // the last /api/state
  let clockOffset = 0;     // server seconds minus local seconds
  let caseId = null;       // the case on screen
  let expired = false;
  let busy = false;
  let selected = 0;
  let blobs = [];          // object URLs of the images on screen, revoked when they leave it

  async function call(method, path, body) {
    const init = { method, cache: 'no-store', credentials: 'omit', headers: { 'X-Idgate-Session': session } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (r.status === 403) throw new Error(REFUSED);
    return data || { ok: false, message: 'Unexpected answer from the console (HTTP ' + r.status + ').' };
  }

  function say(text, isError) {
    const n = $('notice');
    n.textContent = text || '';
    n.classList.toggle('error', !!isError);
  }

  function age(seconds) {
    if (seconds <= 0) return '0 s';
    if (seconds < 120) return seconds + ' s';
    if (seconds < 7200) return Math.floor(seconds / 60) + ' min';
    return Math.floor(seconds / 3600) + ' h ' + Math.floor((seconds % 3600) / 60) + ' min';
  }

  function when(unix) {
    if (!unix) return 'not available';
    const d = new Date(unix * 1000);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function now() { return Date.now() / 1000 + clockOffset; }

  // An image is fetched with the session header (an <img src> could only send a cookie) and shown
  // from a blob: URL; one that arrives after its case left the screen is dropped.
  async function loadImage(img, path, forCase) {
    const r = await fetch(path, { cache: 'no-store', credentials: 'omit', headers: { 'X-Idgate-Session': session } });
    if (!r.ok) return;
    const blob = await r.blob();
    if (caseId !== forCase) return;
    const url = URL.createObjectURL(blob);
    blobs.push(url);
    img.src = url;
  }

  function dropImages() {
    blobs.forEach((url) => URL.revokeObjectURL(url));
    blobs = [];
  }

  function applyView(i) {
    const img = figures[i].querySelector('img');
    img.style.transform = 'scale(' + view[i].zoom + ') rotate(' + view[i].rot + 'deg)';
  }

  function select(i) {
    selected = (i + figures.length) % figures.length;
    figures.forEach((f, j) => f.classList.toggle('selected', j === selected));
  }

  function tool(i, act) {
    const v = view[i];
    if (act === 'in') v.zoom = Math.min(6, v.zoom * 1.25);
    if (act === 'out') v.zoom = Math.max(0.5, v.zoom / 1.25);
    if (act === 'rot') v.rot = (v.rot + 90) % 360;
    if (act === 'reset') { v.zoom = 1; v.rot = 0; }
    applyView(i);
  }

  function renderReasons(reasons) {
    const box = $('reasons');
    if (box.querySelector('input')) return;
    reasons.forEach(([code, words], i) => {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'reason';
      input.value = code;
      input.id = 'reason-' + code;
      if (i === 0) input.checked = true;
      label.appendChild(input);
      label.appendChild(document.createTextNode(' ' + words + ' '));
      const k = document.createElement('kbd');
      k.setAttribute('aria-hidden', 'true');
      k.textContent = String(i + 1);
      label.appendChild(k);
      box.appendChild(label);
    });
  }

  function setDecisionEnabled(on) {
    $('approve').disabled = !on || busy;
    $('reject').disabled = !on || busy;
    $('release').disabled = busy || !caseId;
  }

  function render(s) {
    state = s;
    clockOffset = s.now_unix - Date.now() / 1000;
    $('who').textContent = 'signed in as ' + s.principal;
    const g = $('gateway');
    if (!s.gateway.up) {
      g.hidden = false;
      g.textContent = 'The gateway is down: ' + s.gateway.message;
    } else if (s.gateway.message) {
      g.hidden = false;
      g.textContent = s.gateway.message;
    } else {
      g.hidden = true;
      g.textContent = '';
    }
    if (s.stats) {
      $('stat-pending').textContent = s.stats.pending;
      $('stat-claimed').textContent = s.stats.claimed;
      $('stat-oldest').textContent = s.stats.pending ? age(s.stats.oldest_pending_age_seconds) : '–';
    } else {
      ['stat-pending', 'stat-claimed', 'stat-oldest'].forEach((id) => { $(id).textContent = 'unknown'; });
    }
    $('stat-mine').textContent = s.claimed_by_me;
    if (s.notice) say(s.notice, true);
    renderReasons(s.reasons);
    const c = s.case;
    $('claim').disabled = busy || !!c || !s.gateway.up;
    if (!c) {
      if (caseId) clearCase();
      $('case').hidden = true;
      $('empty').hidden = false;
      return;
    }
    $('empty').hidden = true;
    $('case').hidden = false;
    if (c.id !== caseId) {
      caseId = c.id;
      expired = false;
      view.forEach((v, i) => { v.zoom = 1; v.rot = 0; applyView(i); });
      select(0);
      $('f-name').textContent = c.name;
      $('f-id').textContent = c.id_number;
      $('f-birth').textContent = c.birth_date || 'not derivable';
      $('f-age').textContent = c.age === null ? 'not derivable' : c.age;
      $('f-purpose').textContent = c.purpose;
      $('f-submitted').textContent = when(c.submitted_at_unix);
      $('f-provider').textContent = (c.provider || 'no provider answered') + '; why: ' + c.why;
      $('f-supplement').textContent = c.supplement_complete ? 'complete (front, back, handheld)' : 'not complete';
      $('f-approvals').textContent = c.approved_by.length + ' of ' + c.approvals_required + ' approvals' +
        (c.approved_by.length ? ' (by ' + c.approved_by.join(', ') + ')' : '');
      $('f-case').textContent = c.id;
      dropImages();
      figures.forEach((f, i) => {
        const img = f.querySelector('img');
        const url = c.images[i];
        const missing = f.querySelector('.missing');
        missing.hidden = !!url;
        if (i === 0) missing.textContent = c.face_note || '(not supplied)';
        img.hidden = !url;
        img.removeAttribute('src');
        if (url) loadImage(img, url, c.id).catch(() => { /* the frame stays empty; the facts stay readable */ });
      });
    }
    tick();
  }

  function clearCase() {
    caseId = null;
    dropImages();
    figures.forEach((f) => {
      const img = f.querySelector('img');
      img.removeAttribute('src');
      img.hidden = true;
    });
    ['f-name', 'f-id', 'f-birth', 'f-age', 'f-purpose', 'f-submitted', 'f-provider', 'f-supplement', 'f-approvals', 'f-case']
      .forEach((id) => { $(id).textContent = ''; });
    $('case').hidden = true;
    $('empty').hidden = false;
  }

  function tick() {
    if (!state || !state.case || state.case.id !== caseId) { setDecisionEnabled(false); return; }
    const left = Math.floor(state.case.lease_expires_unix - now());
    const lease = $('lease');
    if (left <= 0) {
      lease.textContent = 'expired';
      lease.parentElement.classList.add('expired');
      setDecisionEnabled(false);
      if (!expired) {
        expired = true;
        say('The lease on this case has expired: decisions are disabled. Claim again to continue.', true);
        refresh();
      }
      return;
    }
    lease.parentElement.classList.remove('expired');
    lease.textContent = Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0');
    setDecisionEnabled(true);
  }

  let generation = 0; // an older answer arriving late must not paint over a newer one

  async function refresh() {
    const mine = ++generation;
    try {
      const s = await call('GET', '/api/state');
      if (mine === generation) render(s);
    } catch (e) {
      const g = $('gateway');
      g.hidden = false;
      g.textContent = 'The review console does not answer: ' + e.message;
    }
  }

  async function act(path, body) {
    if (busy) return;
    busy = true;
    setDecisionEnabled(false);
    $('claim').disabled = true;
    try {
      const r = await call('POST', path, body);
      say(r.message, !r.ok);
    } catch (e) {
      say(e.message, true);
    } finally {
      busy = false;
      tick(); // buttons usable again at once, not only after the refresh below
      await refresh();
    }
  }

  function reason() {
    const r = document.querySelector('input[name=reason]:checked');
    return r ? r.value : '';
  }

  function decide(decision) {
    if (!caseId || $(decision).disabled) return;
    act('/api/decide', { case_id: caseId, decision, reason: reason() });
  }

  $('claim').addEventListener('click', () => act('/api/claim'));
  $('approve').addEventListener('click', () => decide('approve'));
  $('reject').addEventListener('click', () => decide('reject'));
  $('release').addEventListener('click', () => { if (caseId) act('/api/release', { case_id: caseId }); });
  figures.forEach((f, i) => {
    f.querySelectorAll('button').forEach((b) => b.addEventListener('click', () => { select(i); tool(i, b.dataset.act); }));
    f.addEventListener('click', () => select(i));
  });

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    const handled = () => e.preventDefault();
    if (k === 'c' || k === 'C') { if (!$('claim').disabled) act('/api/claim'); return handled(); }
    if (k === 'a' || k === 'A') { decide('approve'); return handled(); }
    if (k === 'r' || k === 'R') { decide('reject'); return handled(); }
    if (k === 'l' || k === 'L') { if (caseId && !busy) act('/api/release', { case_id: caseId }); return handled(); }
    if (k >= '1' && k <= '6') {
      const inputs = document.querySelectorAll('input[name=reason]');
      const input = inputs[Number(k) - 1];
      if (input) { input.checked = true; input.focus(); }
      return handled();
    }
    if (!caseId) return;
    if (k === '[') { select(selected - 1); return handled(); }
    if (k === ']') { select(selected + 1); return handled(); }
    if (k === '+' || k === '=') { tool(selected, 'in'); return handled(); }
    if (k === '-' || k === '_') { tool(selected, 'out'); return handled(); }
    if (k === 't' || k === 'T') { tool(selected, 'rot'); return handled(); }
    if (k === '0') { tool(selected, 'reset'); return handled(); }
  });

  setInterval(tick, 1000);
  setInterval(refresh, 3000);
  refresh();
})();
