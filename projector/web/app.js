/*
 * app.js: keel's dashboard. It reads workflows from keel-projector's HTTP
 * API (docs/http-api.md), polls every POLL_MS while live, and sends starts,
 * signals, cancels and terminations as the API's POSTs. Two views, chosen by
 * the URL hash: the list (#/?status=&type=&prefix=) and one workflow
 * (#/workflows/<percent-encoded ID>). Everything shown comes from the API
 * and is put into the page as text, never as markup. When a POST (or, with
 * http.auth.reads, a GET) answers 401 it asks for a bearer token, keeps it
 * in localStorage and sends it with every request.
 */
(function () {
  'use strict';

  const API = '/api/v1/workflows';
  const POLL_MS = 1500;
  const PAGE_SIZE = 50;
  const HISTORY_PAGE = 1000;
  const TOKEN_KEY = 'keel.token';
  const STATUSES = ['running', 'blocked', 'completed', 'failed', 'cancelled',
                    'terminated', 'continued'];
  const OPEN = new Set(['running', 'blocked']);

  const $ = (id) => document.getElementById(id);

  /* ---- DOM helpers ---------------------------------------------------- */

  /* An element with attributes and children; strings become text nodes. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false)
        continue;
      if (k === 'class')
        el.className = v;
      else if (k === 'dataset')
        Object.assign(el.dataset, v);
      else if (k.startsWith('on'))
        el.addEventListener(k.slice(2), v);
      else
        el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false)
        continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  function show(el, on) { el.hidden = !on; }

  function say(el, text) {
    el.textContent = text || '';
    el.hidden = !text;
  }

  function pretty(v) {
    if (v === null || v === undefined)
      return 'null';
    return JSON.stringify(v, null, 2);
  }

  function compact(v, max) {
    let s = typeof v === 'string' ? v : JSON.stringify(v);
    if (s === undefined)
      s = String(v);
    return max && s.length > max ? s.slice(0, max - 1) + '…' : s;
  }

  /* ---- time ------------------------------------------------------------ */

  function two(n) { return String(n).padStart(2, '0'); }

  /* A timestamp from the API (RFC 3339 string or ms since the epoch). */
  function toDate(v) {
    if (v === null || v === undefined || v === '')
      return null;
    if (typeof v === 'object') { /* an Avro union as JSON: {"long": n} */
      const vals = Object.values(v);
      v = vals.length === 1 ? vals[0] : null;
    }
    const d = new Date(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v);
    return isNaN(d) ? null : d;
  }

  function clock(d) {
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  /* Local time, the date only when it is not today. */
  function when(v) {
    const d = toDate(v);
    if (!d)
      return '';
    const now = new Date();
    const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
    return d.toDateString() === now.toDateString() ? clock(d) : `${day} ${clock(d)}`;
  }

  function span(ms) {
    const s = Math.round(Math.abs(ms) / 1000);
    if (s < 60)
      return `${s}s`;
    if (s < 3600)
      return `${Math.floor(s / 60)}m ${s % 60}s`;
    if (s < 86400)
      return `${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor(s % 86400 / 3600)}h`;
  }

  function relative(v) {
    const d = toDate(v);
    if (!d)
      return '';
    const ms = d - Date.now();
    return ms >= 0 ? `in ${span(ms)}` : `${span(ms)} ago`;
  }

  /* ---- the API --------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  let token = localStorage.getItem(TOKEN_KEY) || '';
  let tokenAsk = null;        /* the open dialog's promise */
  let readsDeclined = false;  /* the user cancelled the dialog for a read */

  function showTokenState() {
    show($('token-state'), !!token);
  }

  /* Resolves once the user saved a token, rejects if they cancel. */
  function askToken(reason) {
    if (tokenAsk)
      return tokenAsk;
    tokenAsk = new Promise((resolve, reject) => {
      const dlg = $('token-dialog'), form = $('token-form');
      const input = $('token-input'), cancel = $('token-cancel');
      $('token-reason').textContent = reason;
      input.value = '';
      dlg.hidden = false;
      input.focus();
      const done = (ok) => {
        form.removeEventListener('submit', onSave);
        form.removeEventListener('keydown', onKey);
        cancel.removeEventListener('click', onCancel);
        dlg.hidden = true;
        tokenAsk = null;
        if (ok)
          resolve();
        else
          reject(new ApiError(401, 'a bearer token is needed'));
      };
      const onSave = (e) => {
        e.preventDefault();
        token = input.value.trim();
        if (token)
          localStorage.setItem(TOKEN_KEY, token);
        else
          localStorage.removeItem(TOKEN_KEY);
        showTokenState();
        done(true);
      };
      const onCancel = () => done(false);
      const onKey = (e) => {
        if (e.key === 'Escape')
          done(false);
      };
      form.addEventListener('submit', onSave);
      form.addEventListener('keydown', onKey);
      cancel.addEventListener('click', onCancel);
    });
    return tokenAsk;
  }

  /*
   * One request. Answers {data, headers} for 2xx; throws ApiError with the
   * API's own error message otherwise (status 0: the projector did not
   * answer). A 401 asks for a token and tries again.
   */
  async function request(method, path, body) {
    for (let tries = 0; ; tries++) {
      const headers = { Accept: 'application/json' };
      if (token)
        headers.Authorization = 'Bearer ' + token;
      const init = { method, headers, cache: 'no-store' };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = body;
      }
      let resp, text;
      try {
        resp = await fetch(path, init);
        text = await resp.text();
      } catch (e) {
        throw new ApiError(0, 'cannot reach keel-projector');
      }
      let data = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch (e) {
        data = null;
      }
      if (resp.ok)
        return { data, headers: resp.headers };
      const msg = data && typeof data.error === 'string'
                      ? data.error
                      : `HTTP ${resp.status} ${resp.statusText}`.trim();
      const read = method === 'GET';
      if (resp.status === 401 && tries < 3 && !(read && readsDeclined)) {
        try {
          await askToken(token ? `The token was refused: ${msg}.`
                               : `keel-projector answered: ${msg}.`);
        } catch (e) {
          if (read)
            readsDeclined = true;
          throw new ApiError(401, msg);
        }
        readsDeclined = false;
        continue;
      }
      throw new ApiError(resp.status, msg);
    }
  }

  const get = (path) => request('GET', path);
  const post = (path, body) => request('POST', path, body);
  const wfPath = (id) => `${API}/${encodeURIComponent(id)}`;

  /* ---- connection state and banner ------------------------------------- */

  function setConn(state, text, title) {
    const c = $('conn');
    c.dataset.state = state;
    c.textContent = text;
    c.title = title || '';
  }

  /* After a read failed: say why, checking /readyz on a 503. */
  async function readFailed(err) {
    const banner = $('banner');
    if (err.status === 503) {
      let ready = null;
      try {
        const r = await fetch('/readyz', { cache: 'no-store' });
        ready = r.ok;
      } catch (e) {
        ready = null;
      }
      if (ready === false) {
        setConn('catching-up', 'catching up');
        banner.dataset.kind = 'info';
        say(banner, 'keel-projector is catching up with keel.history; ' +
                    'the workflows appear once it has read to the end.');
        return;
      }
    }
    if (err.status === 0) {
      setConn('offline', 'offline');
      banner.dataset.kind = 'error';
      say(banner, 'Cannot reach keel-projector; retrying.');
      return;
    }
    if (err.status === 401) {
      setConn('error', 'token needed');
      banner.dataset.kind = 'error';
      banner.textContent = 'keel-projector needs a bearer token for reads. ';
      banner.append(h('button', {
        type: 'button', id: 'banner-token', class: 'linkish',
        onclick: () => { readsDeclined = false; poll(); },
      }, 'Enter token'));
      banner.hidden = false;
      return;
    }
    setConn('error', 'error');
    banner.dataset.kind = 'error';
    say(banner, `keel-projector answered ${err.status}: ${err.message}`);
  }

  function readOk(headers) {
    const pos = headers && headers.get('X-Keel-Read-Position');
    setConn('live', live ? 'up to date' : 'paused',
            pos ? `keel.history read position ${pos}` : '');
    say($('banner'), '');
  }

  /* ---- routing --------------------------------------------------------- */

  let route = { view: 'list' };
  let gen = 0; /* bumps with every route change; older answers are dropped */

  function parseHash() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const m = /^\/workflows\/(.+)$/.exec(hash);
    if (m) {
      try {
        return { view: 'workflow', id: decodeURIComponent(m[1]) };
      } catch (e) {
        return { view: 'workflow', id: m[1] };
      }
    }
    const q = new URLSearchParams(hash.split('?')[1] || '');
    return {
      view: 'list',
      status: q.get('status') || '',
      type: q.get('type') || '',
      prefix: q.get('prefix') || '',
    };
  }

  function onRoute() {
    route = parseHash();
    gen++;
    show($('list-view'), route.view === 'list');
    show($('workflow-view'), route.view === 'workflow');
    if (route.view === 'list')
      enterList();
    else
      enterWorkflow(route.id);
    poll();
  }

  /* ---- the list -------------------------------------------------------- */

  const list = {
    status: '', type: '', prefix: '',
    cursors: [null], /* the cursor of each page up to the current one */
    next: null,
    sig: '',
    fresh: '', /* a workflow just started here, highlighted */
  };

  function enterList() {
    const changed = list.status !== route.status || list.type !== route.type ||
                    list.prefix !== route.prefix;
    list.status = route.status;
    list.type = route.type;
    list.prefix = route.prefix;
    if (changed)
      list.cursors = [null];
    $('filter-status').value = list.status;
    if (document.activeElement !== $('filter-type'))
      $('filter-type').value = list.type;
    if (document.activeElement !== $('filter-prefix'))
      $('filter-prefix').value = list.prefix;
    document.title = 'Workflows · keel';
  }

  /*
   * Filters go into the hash, so that a view can be bookmarked. Typing
   * replaces the history entry rather than adding one per keystroke.
   */
  function setFilters(f, typing) {
    const q = new URLSearchParams();
    for (const k of ['status', 'type', 'prefix']) {
      const v = k in f ? f[k] : list[k];
      if (v)
        q.set(k, v);
    }
    const s = q.toString();
    const hash = s ? `#/?${s}` : '#/';
    if (typing)
      location.replace(hash);
    else
      location.hash = hash;
  }

  async function refreshList(g) {
    const q = new URLSearchParams();
    if (list.status)
      q.set('status', list.status);
    if (list.type)
      q.set('type', list.type);
    if (list.prefix)
      q.set('prefix', list.prefix);
    q.set('limit', String(PAGE_SIZE));
    const cursor = list.cursors[list.cursors.length - 1];
    if (cursor)
      q.set('cursor', cursor);
    const { data, headers } = await get(`${API}?${q}`);
    if (g !== gen)
      return;
    readOk(headers);
    renderList(data);
  }

  function renderCounts(counts) {
    const box = $('counts');
    let total = 0;
    for (const s of STATUSES)
      total += counts[s] || 0;
    const chip = (status, label, n) => h('button', {
      type: 'button',
      class: `chip${list.status === status ? ' active' : ''}`,
      dataset: { status: status || 'all' },
      'aria-pressed': list.status === status ? 'true' : 'false',
      onclick: () => setFilters({ status: list.status === status ? '' : status }),
    }, h('span', { class: `dot st-${status || 'all'}` }), label,
       h('span', { class: 'n' }, String(n)));
    box.replaceChildren(chip('', 'all', total),
                        ...STATUSES.map((s) => chip(s, s, counts[s] || 0)));
  }

  function renderList(data) {
    const rows = data.workflows || [];
    list.next = data.next_cursor || null;
    const sig = JSON.stringify([data, list.status, list.fresh]);
    const page = list.cursors.length;
    $('page-info').textContent = `page ${page}`;
    $('page-prev').disabled = page <= 1;
    $('page-first').disabled = page <= 1;
    $('page-next').disabled = !list.next;
    if (sig === list.sig)
      return;
    list.sig = sig;
    renderCounts(data.counts || {});
    const body = $('workflow-rows');
    body.replaceChildren(...rows.map((w) => {
      const open = () => {
        location.hash = `#/workflows/${encodeURIComponent(w.workflow_id)}`;
      };
      return h('tr', {
        dataset: { workflowId: w.workflow_id, status: w.status },
        class: w.workflow_id === list.fresh ? 'fresh' : null,
        tabindex: '0',
        onclick: open,
        onkeydown: (e) => { if (e.key === 'Enter') open(); },
      },
      h('td', { class: 'id mono' }, h('a', {
        href: `#/workflows/${encodeURIComponent(w.workflow_id)}`,
      }, w.workflow_id)),
      h('td', { class: 'type' }, w.type || ''),
      h('td', { class: 'status' }, statusBadge(w.status)),
      h('td', { class: 'time', title: w.start_time || '' }, when(w.start_time)),
      h('td', { class: 'time', title: w.close_time || '' }, when(w.close_time)),
      h('td', { class: 'num' }, String(w.history_length ?? '')));
    }));
    show($('list-empty'), rows.length === 0);
  }

  function statusBadge(status) {
    return h('span', { class: `badge st-${status}` }, status);
  }

  function wireList() {
    let typing = 0;
    const typed = () => {
      clearTimeout(typing);
      typing = setTimeout(() => setFilters({
        type: $('filter-type').value.trim(),
        prefix: $('filter-prefix').value,
      }, true), 300);
    };
    $('filter-type').addEventListener('input', typed);
    $('filter-prefix').addEventListener('input', typed);
    $('filters').addEventListener('submit', (e) => e.preventDefault());
    $('filter-status').addEventListener('change',
        () => setFilters({ status: $('filter-status').value }));
    $('page-next').addEventListener('click', () => {
      if (!list.next)
        return;
      list.cursors.push(list.next);
      reload();
    });
    $('page-prev').addEventListener('click', () => {
      if (list.cursors.length > 1)
        list.cursors.pop();
      reload();
    });
    $('page-first').addEventListener('click', () => {
      list.cursors = [null];
      reload();
    });
    $('start-form').addEventListener('submit', (e) => {
      e.preventDefault();
      startWorkflow();
    });
  }

  /* Parse a JSON field; undefined for an empty one. Throws with a message. */
  function jsonField(text, what) {
    if (!text.trim())
      return undefined;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${what} is not valid JSON: ${e.message}`);
    }
  }

  async function startWorkflow() {
    const err = $('start-error'), ok = $('start-result'), btn = $('start-send');
    say(err, '');
    say(ok, '');
    const body = { type: $('start-type').value.trim() };
    const id = $('start-id').value.trim();
    try {
      if (!body.type)
        throw new Error('A workflow type is required.');
      const input = jsonField($('start-input').value, 'The input');
      if (input !== undefined)
        body.input = input;
    } catch (e) {
      say(err, e.message);
      return;
    }
    if (id)
      body.workflow_id = id;
    btn.disabled = true;
    try {
      const { data } = await post(API, JSON.stringify(body));
      const wid = data && data.workflow_id ? data.workflow_id : id;
      list.fresh = wid;
      ok.replaceChildren('Started ', h('a', {
        href: `#/workflows/${encodeURIComponent(wid)}`, class: 'mono',
        id: 'start-link',
      }, wid), '.');
      ok.hidden = false;
      $('start-id').value = '';
      readYourWrite(data);
    } catch (e) {
      say(err, e.message);
    } finally {
      btn.disabled = false;
    }
  }

  /*
   * After a write: one read that waits (after=) until the projector has
   * seen the orchestrator process the command, so the change shows at
   * once; then polling goes on as before.
   */
  function readYourWrite(answer) {
    if (!answer || !answer.position)
      return;
    const g = gen;
    const after = `after=${encodeURIComponent(answer.position)}&wait=5s`;
    const path = route.view === 'workflow' ? `${wfPath(route.id)}?${after}`
                                           : `${API}?limit=1&${after}`;
    get(path).then(() => { if (g === gen) poll(); }, () => {});
  }

  /* ---- one workflow ---------------------------------------------------- */

  const wfv = {
    id: '',
    sig: '',
    data: null,
    hist: null, /* {runId, seen: Set of seq, length, count} */
    armed: 0,   /* the terminate button's confirmation timer */
  };

  function enterWorkflow(id) {
    if (wfv.id !== id) {
      wfv.id = id;
      wfv.sig = '';
      wfv.data = null;
      wfv.hist = null;
      $('wf-history').replaceChildren();
      $('wf-history-count').textContent = '';
      say($('action-error'), '');
      say($('action-result'), '');
      $('wf-id').textContent = id;
      const st = $('wf-status');
      st.textContent = '';
      st.className = 'status';
      delete st.dataset.status;
      show($('wf-body'), false);
      say($('wf-missing'), '');
    }
    document.title = `${id} · keel`;
  }

  async function refreshWorkflow(g) {
    const id = wfv.id;
    let data, headers;
    try {
      ({ data, headers } = await get(wfPath(id)));
    } catch (e) {
      if (g === gen && e.status === 404) {
        readOk(null);
        show($('wf-body'), false);
        say($('wf-missing'), `No workflow “${id}” in keel.history (yet). ` +
                             'This view fills in once the projector reads it.');
        return;
      }
      throw e;
    }
    if (g !== gen)
      return;
    readOk(headers);
    say($('wf-missing'), '');
    show($('wf-body'), true);
    renderWorkflow(data);
    await refreshHistory(g, data);
  }

  function renderWorkflow(w) {
    wfv.data = w;
    tickTimers();
    const sig = JSON.stringify(w);
    if (sig === wfv.sig)
      return;
    wfv.sig = sig;
    const st = $('wf-status');
    st.textContent = w.status;
    st.className = `status badge st-${w.status}`;
    st.dataset.status = w.status;
    $('wf-type').textContent = w.type || '';
    $('wf-run-id').textContent = w.run_id || '';
    $('wf-start').textContent = when(w.start_time);
    $('wf-start').title = w.start_time || '';
    $('wf-close').textContent = w.close_time ? when(w.close_time) : 'open';
    $('wf-close').title = w.close_time || '';
    $('wf-length').textContent = String(w.history_length ?? '');
    $('wf-input').textContent = pretty(w.input);

    renderOutcome();
    $('wf-state').textContent = w.state === null || w.state === undefined
                                    ? '— none published'
                                    : pretty(w.state);
    $('wf-search').textContent = Object.keys(w.search_attributes || {}).length
                                     ? pretty(w.search_attributes)
                                     : '— none';

    const acts = w.pending_activities || [];
    $('wf-activities').tBodies[0].replaceChildren(...acts.map((a) => h('tr', {
      dataset: { activityId: a.activity_id },
    },
    h('td', {}, a.activity_type || ''),
    h('td', { class: 'mono' }, a.activity_id),
    h('td', { class: 'num' }, String(a.attempt)),
    h('td', { class: 'mono clip', title: a.last_failure ? pretty(a.last_failure) : '' },
      a.last_failure ? compact(failureText(a.last_failure), 120) : ''),
    h('td', { class: 'mono clip' },
      a.heartbeat_details === null || a.heartbeat_details === undefined
          ? '' : compact(a.heartbeat_details, 120)))));
    show($('wf-activities'), acts.length > 0);
    show($('wf-activities-none'), acts.length === 0);

    const timers = w.pending_timers || [];
    $('wf-timers').tBodies[0].replaceChildren(...timers.map((t) => h('tr', {
      dataset: { timerId: t.timer_id },
    },
    h('td', { class: 'mono' }, t.timer_id),
    h('td', { title: t.fire_at || '' }, when(t.fire_at), ' ',
      h('span', { class: 'hint rel', dataset: { at: t.fire_at || '' } },
        relative(t.fire_at))))));
    show($('wf-timers'), timers.length > 0);
    show($('wf-timers-none'), timers.length === 0);

    const sigs = w.signals || { count: 0, last: [] };
    const last = sigs.last || [];
    $('wf-signals').replaceChildren(
        h('p', { id: 'wf-signal-count' }, `${sigs.count} received`,
          sigs.count > last.length ? '; the latest:' : ''),
        h('ul', { class: 'names' },
          last.map((n) => h('li', { class: 'mono' }, n ?? '?'))));

    const open = OPEN.has(w.status);
    for (const id of ['signal-name', 'signal-payload', 'signal-send',
                      'control-reason', 'wf-cancel', 'wf-terminate'])
      $(id).disabled = !open;
    show($('actions-closed'), !open);
    if (!open)
      disarm();
  }

  /* Result, failure, or why it closed without either (from the history). */
  function renderOutcome() {
    const w = wfv.data;
    if (!w)
      return;
    const title = $('wf-outcome-title'), out = $('wf-outcome');
    out.classList.toggle('bad', !!w.failure);
    if (w.failure) {
      title.textContent = 'Failure';
      out.textContent = pretty(w.failure);
    } else if (w.status === 'completed') {
      title.textContent = 'Result';
      out.textContent = pretty(w.result);
    } else if (OPEN.has(w.status)) {
      title.textContent = 'Result';
      out.textContent = '— not closed yet';
    } else {
      const reason = wfv.hist && wfv.hist.reason;
      title.textContent = 'Outcome';
      out.textContent = `${w.status}, no result` +
                        (reason ? `\nreason: ${reason}` : '');
    }
  }

  function failureText(f) {
    if (f && typeof f === 'object' && typeof f.message === 'string')
      return f.type ? `${f.type}: ${f.message}` : f.message;
    return f;
  }

  function tickTimers() {
    for (const el of document.querySelectorAll('#wf-timers .rel'))
      el.textContent = relative(el.dataset.at);
  }

  /*
   * History: all pages on first sight, then only what is new, and only
   * when history_length moved (each page is a fetch from keel.history).
   */
  async function refreshHistory(g, w) {
    let hs = wfv.hist;
    if (hs && hs.runId === w.run_id && hs.length === w.history_length)
      return;
    if (!hs || hs.runId !== w.run_id)
      hs = resetHistory(w.run_id);
    /* The cursor is the first seq wanted (docs/http-api.md). */
    let cursor = hs.last === null ? null : String(hs.last + 1);
    for (let pages = 0; pages < 10000; pages++) {
      const q = new URLSearchParams({ limit: String(HISTORY_PAGE) });
      if (cursor !== null)
        q.set('cursor', cursor);
      const { data } = await get(`${wfPath(wfv.id)}/history?${q}`);
      if (g !== gen || wfv.hist !== hs)
        return;
      if (data.run_id && data.run_id !== hs.runId) {
        /* A new run began between the two reads: start over next time. */
        wfv.hist = null;
        return;
      }
      appendEvents(hs, data.events || []);
      const next = data.next_cursor;
      if (next === null || next === undefined || String(next) === cursor)
        break;
      cursor = String(next);
    }
    hs.length = w.history_length;
  }

  function resetHistory(runId) {
    wfv.hist = { runId, seen: new Set(), last: null, length: -1, count: 0,
                 reason: '' };
    $('wf-history').replaceChildren();
    return wfv.hist;
  }

  /* Record fields worth a glance, in this order. */
  const GIST = ['workflow_type', 'activity_type', 'activity_id', 'timer_id',
                'signal_name', 'marker_name', 'attempt', 'duration_ms',
                'reason', 'input', 'result', 'payload', 'failure', 'message',
                'details'];

  function gist(rec) {
    const parts = [];
    for (const k of GIST) {
      let v = rec ? rec[k] : undefined;
      if (v === null || v === undefined || v === '')
        continue;
      if (typeof v === 'object' && !Array.isArray(v)) {
        const vals = Object.values(v);
        if (vals.length === 1 && typeof vals[0] !== 'object')
          v = vals[0];
      }
      parts.push(`${k}=${compact(v, 60)}`);
      if (parts.length === 4)
        break;
    }
    return parts.join('  ');
  }

  function appendEvents(hs, events) {
    const ol = $('wf-history');
    for (const ev of events) {
      if (hs.seen.has(ev.seq))
        continue;
      hs.seen.add(ev.seq);
      hs.last = hs.last === null ? ev.seq : Math.max(hs.last, ev.seq);
      hs.count++;
      const type = String(ev.type || '').replace(/^keel\.history\./, '');
      const kind =
          (/^(Workflow|Activity|Timer|Signal|Child|Marker)/.exec(type) ||
           ['other'])[0];
      const rec = ev.record || {};
      const d = toDate(rec.ts);
      if (/^Workflow(Terminated|CancelRequested)$/.test(type) && rec.reason)
        hs.reason = String(typeof rec.reason === 'object'
                               ? Object.values(rec.reason)[0] : rec.reason);
      ol.append(h('li', {
        class: `event k-${kind.toLowerCase()}`,
        dataset: { seq: String(ev.seq), type },
      },
      h('details', {},
        h('summary', {},
          h('span', { class: 'seq' }, String(ev.seq)),
          h('span', { class: 'etype' }, type),
          h('span', { class: 'when', title: d ? d.toISOString() : '' },
            d ? clock(d) : ''),
          h('span', { class: 'gist mono' }, gist(rec))),
        h('pre', { class: 'json' }, pretty(rec)))));
    }
    $('wf-history-count').textContent =
        `${hs.count} ${hs.count === 1 ? 'event' : 'events'}`;
    renderOutcome();
  }

  /* ---- actions on a workflow -------------------------------------------- */

  async function act(btn, what, fn) {
    const err = $('action-error'), ok = $('action-result');
    say(err, '');
    say(ok, '');
    btn.disabled = true;
    try {
      const { data } = await fn();
      say(ok, `${what} sent` +
              (data && data.command_id ? ` (command ${data.command_id}).` : '.'));
      readYourWrite(data);
    } catch (e) {
      say(err, e.message);
    } finally {
      btn.disabled = !(wfv.data && OPEN.has(wfv.data.status));
    }
  }

  function disarm() {
    clearTimeout(wfv.armed);
    wfv.armed = 0;
    const b = $('wf-terminate');
    b.classList.remove('armed');
    b.textContent = 'Terminate';
  }

  function reasonBody(extra) {
    const reason = $('control-reason').value.trim();
    const body = Object.assign({}, extra);
    if (reason)
      body.reason = reason;
    return JSON.stringify(body);
  }

  function wireWorkflow() {
    $('signal-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const name = $('signal-name').value.trim();
      let payload;
      try {
        if (!name)
          throw new Error('A signal name is required.');
        payload = jsonField($('signal-payload').value, 'The payload');
      } catch (ex) {
        say($('action-result'), '');
        say($('action-error'), ex.message);
        return;
      }
      const id = wfv.id;
      act($('signal-send'), `Signal ${name}`, () => post(
          `${wfPath(id)}/signals/${encodeURIComponent(name)}`,
          payload === undefined ? '' : JSON.stringify(payload)));
    });
    $('control-form').addEventListener('submit', (e) => e.preventDefault());
    $('wf-cancel').addEventListener('click', () => {
      const id = wfv.id;
      act($('wf-cancel'), 'Cancel request',
          () => post(`${wfPath(id)}/cancel`, reasonBody()));
    });
    $('wf-terminate').addEventListener('click', () => {
      const b = $('wf-terminate');
      if (!wfv.armed) {
        /* Terminating skips the workflow's own clean-up: ask twice. */
        b.classList.add('armed');
        b.textContent = 'Confirm terminate';
        wfv.armed = setTimeout(disarm, 5000);
        return;
      }
      disarm();
      const id = wfv.id;
      act(b, 'Terminate', () => post(`${wfPath(id)}/terminate`, reasonBody()));
    });
  }

  /* ---- polling ----------------------------------------------------------- */

  let live = true;
  let timer = 0;
  let running = -1; /* the gen whose refresh is in flight */

  async function refresh(g) {
    try {
      if (route.view === 'list')
        await refreshList(g);
      else
        await refreshWorkflow(g);
    } catch (e) {
      if (g === gen)
        await readFailed(e);
    }
  }

  async function poll() {
    const g = gen;
    clearTimeout(timer);
    if (running === g)
      return; /* that refresh schedules the next */
    running = g;
    try {
      await refresh(g);
    } finally {
      if (running === g)
        running = -1;
    }
    if (g === gen && live)
      timer = setTimeout(poll, POLL_MS);
  }

  /* Show another page now: drop what is in flight for the old one. */
  function reload() {
    gen++;
    list.sig = '';
    poll();
  }

  function wireTop() {
    $('live-toggle').addEventListener('change', (e) => {
      live = e.target.checked;
      if (live)
        poll();
      else
        clearTimeout(timer);
      setConn(live ? 'live' : 'paused', live ? 'up to date' : 'paused');
    });
    $('token-forget').addEventListener('click', () => {
      token = '';
      localStorage.removeItem(TOKEN_KEY);
      showTokenState();
    });
    window.addEventListener('hashchange', onRoute);
  }

  wireTop();
  wireList();
  wireWorkflow();
  showTokenState();
  onRoute();
})();
