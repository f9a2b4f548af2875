// hashgate review: the reviewers' page. Plain JavaScript, no build step, no framework and
// nothing loaded from elsewhere. The server renders index.html with the sign-in settings in
// <meta> tags; this script signs in against the identity provider (Amazon Cognito's
// InitiateAuth), keeps the access token in sessionStorage, and talks to the review API with
// it. Every piece of case data reaches the page through textContent or a text node, never as
// markup: keys, reasons and list names can hold anything.
'use strict';

(function () {
  // ---------------------------------------------------------------------------------------
  // Settings and small helpers

  const SESSION_KEY = 'hashgate.session';
  const QUEUE_KEY = 'hashgate.queue';
  const PAGE_SIZE = 50;
  const DEFAULT_REVEAL_SECONDS = 10;
  const MAX_REVEAL_SECONDS = 300;

  const STATUS_LABELS = {
    pending_review: 'Pending review',
    held_in_place: 'Held in place',
    content_gone: 'Content gone',
    awaiting_second_review: 'Awaiting second review',
    escalated: 'Escalated',
    releasing: 'Releasing',
    confirmed: 'Confirmed',
    released: 'Released',
  };
  // Statuses on which no decision can be taken any more (the server refuses them too).
  const CLOSED = new Set(['confirmed', 'released']);
  const DECISION_LABELS = {
    confirm: 'Confirm match',
    false_positive: 'Mark as false positive',
    escalate: 'Escalate',
  };
  const DECISION_NOTES = {
    confirm: 'Confirming needs the classification the report will carry. With the two-person rule, a second reviewer must confirm as well.',
    false_positive: 'A false positive restores the quarantined file to where it was uploaded; the quarantine copy stays under retention.',
    escalate: 'Escalating hands the case on for a senior decision.',
  };
  const CLASSIFICATIONS = new Set(['A1', 'A2', 'B1', 'B2']);

  function meta(name) {
    const node = document.querySelector('meta[name="' + name + '"]');
    const value = node ? (node.getAttribute('content') || '').trim() : '';
    // A placeholder the server did not fill in counts as unset.
    return /^\{\{.*\}\}$/.test(value) ? '' : value;
  }

  const config = {
    clientId: meta('hashgate-client-id'),
    region: meta('hashgate-region'),
    idpEndpoint: (function () {
      const explicit = meta('hashgate-idp-endpoint');
      if (explicit) return explicit.replace(/\/+$/, '');
      const region = meta('hashgate-region');
      return region ? 'https://cognito-idp.' + region + '.amazonaws.com' : '';
    })(),
  };

  const $ = (id) => document.getElementById(id);

  // An element with attributes and children; strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = String(value);
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
  }

  function setText(node, text) {
    node.textContent = text === null || text === undefined ? '' : String(text);
  }

  function showMessage(node, text) {
    setText(node, text);
    node.hidden = !text;
  }

  function caseHref(id) {
    return '#/case/' + encodeURIComponent(id);
  }

  function apiPath(...parts) {
    return 'api/' + parts.map((p) => encodeURIComponent(p)).join('/');
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  // An RFC 3339 instant as "YYYY-MM-DD HH:MM:SS UTC" in a <time> element (raw if unreadable).
  function timeEl(value) {
    if (value === null || value === undefined || value === '') return el('span', { class: 'hint', text: 'not recorded' });
    const raw = String(value);
    const date = new Date(raw);
    if (Number.isNaN(date.getTime())) return el('span', { text: raw });
    const text = date.getUTCFullYear() + '-' + pad(date.getUTCMonth() + 1) + '-' + pad(date.getUTCDate()) +
      ' ' + pad(date.getUTCHours()) + ':' + pad(date.getUTCMinutes()) + ':' + pad(date.getUTCSeconds()) + ' UTC';
    return el('time', { datetime: raw, title: raw, text: text });
  }

  function formatBytes(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return value === null || value === undefined ? 'unknown' : String(value);
    const exact = value.toLocaleString('en-US') + (value === 1 ? ' byte' : ' bytes');
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = value;
    let unit = '';
    for (const u of units) {
      if (v < 1024) break;
      v /= 1024;
      unit = u;
    }
    return unit ? v.toFixed(1) + ' ' + unit + ' (' + exact + ')' : exact;
  }

  function statusEl(status) {
    const s = String(status || 'unknown');
    return el('span', { class: 'status s-' + s.replace(/[^a-z_]/g, ''), 'data-status': s, text: STATUS_LABELS[s] || s });
  }

  function orDash(value) {
    return value === null || value === undefined || value === '' ? '—' : String(value);
  }

  // ---------------------------------------------------------------------------------------
  // Session

  const state = {
    session: null,
    me: null,
    seq: 0, // bumped on every navigation: answers for an older view are dropped
    view: null,
    queue: { key: null, items: [], cursor: null, loaded: false, selected: -1, loading: null },
    current: null, // the open case: { id, data, audit, preview, revealed, ... }
    expiryTimer: null,
  };

  class SignedOut extends Error {}

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function loadSession() {
    let raw = null;
    try {
      raw = sessionStorage.getItem(SESSION_KEY);
    } catch (_) {
      return null;
    }
    if (!raw) return null;
    try {
      const s = JSON.parse(raw);
      if (s && typeof s.token === 'string' && typeof s.expiresAt === 'number') return s;
    } catch (_) {
      // fall through
    }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  function startSession(session) {
    state.session = session;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    scheduleExpiry();
  }

  function scheduleExpiry() {
    clearTimeout(state.expiryTimer);
    if (!state.session) return;
    const left = state.session.expiresAt - Date.now();
    // setTimeout cannot wait longer than about 24.8 days; tokens live for hours.
    state.expiryTimer = setTimeout(() => signOut('Your session expired. Sign in again.'), Math.max(0, Math.min(left, 2147483000)));
  }

  // The claims of a JWT, for display only: the server verifies the token.
  function claims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent(Array.from(atob(part), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
      return JSON.parse(json);
    } catch (_) {
      return {};
    }
  }

  function signOut(message) {
    const hadSession = state.session !== null;
    clearTimeout(state.expiryTimer);
    state.session = null;
    state.me = null;
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch (_) {
      // nothing stored
    }
    leaveCase();
    forgetData();
    state.seq++;
    renderHeader();
    showSignIn(hadSession ? message : '');
  }

  // Remove every piece of case data from the page (after sign-out nothing is left behind).
  function forgetData() {
    state.queue = { key: null, items: [], cursor: null, loaded: false, selected: -1, loading: null };
    for (const id of ['queue-rows', 'case-match-list', 'preview-box', 'case-details']) clear($(id));
    for (const id of ['case-reviews', 'case-audit', 'me-reveals']) clear($(id).tBodies[0]);
    for (const id of ['case-title', 'case-position', 'queue-status', 'me-user', 'me-role', 'me-count', 'audit-verdict']) setText($(id), '');
    clear($('case-status'));
    clear($('audit-details'));
    $('case-body').hidden = true;
    $('me-body').hidden = true;
    $('audit-body').hidden = true;
    resetDecisionForm();
    $('reveal-reason').value = '';
  }

  async function initiateAuth(username, password) {
    if (!config.clientId || !config.idpEndpoint) {
      throw new Error('Sign-in is not configured on this server (no client id or identity provider).');
    }
    let res;
    try {
      res = await fetch(config.idpEndpoint + '/', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-amz-json-1.1',
          'X-Amz-Target': 'AWSCognitoIdentityProviderService.InitiateAuth',
        },
        body: JSON.stringify({
          AuthFlow: 'USER_PASSWORD_AUTH',
          ClientId: config.clientId,
          AuthParameters: { USERNAME: username, PASSWORD: password },
        }),
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch (_) {
      throw new Error('The sign-in service could not be reached. Check the connection and try again.');
    }
    let data = {};
    try {
      data = await res.json();
    } catch (_) {
      data = {};
    }
    if (!res.ok) {
      const type = String(data.__type || data.code || '').split('#').pop();
      if (type === 'NotAuthorizedException' || type === 'UserNotFoundException') {
        throw new Error('Incorrect user name or password.');
      }
      if (type === 'PasswordResetRequiredException') {
        throw new Error('This account must reset its password first; ask an administrator.');
      }
      if (type === 'UserNotConfirmedException') {
        throw new Error('This account is not confirmed yet; ask an administrator.');
      }
      throw new Error('Sign-in failed: ' + String(data.message || data.Message || type || 'HTTP ' + res.status));
    }
    if (data.ChallengeName) {
      throw new Error('This account needs a step this page does not support (' + String(data.ChallengeName) + '); ask an administrator.');
    }
    const result = data.AuthenticationResult;
    if (!result || typeof result.AccessToken !== 'string') {
      throw new Error('The sign-in service answered without a token.');
    }
    const seconds = Number(result.ExpiresIn) > 0 ? Number(result.ExpiresIn) : 3600;
    const c = claims(result.AccessToken);
    return {
      token: result.AccessToken,
      user: typeof c.username === 'string' && c.username ? c.username : username,
      expiresAt: Date.now() + seconds * 1000,
    };
  }

  // ---------------------------------------------------------------------------------------
  // The review API

  async function api(path, options) {
    const opts = options || {};
    const s = state.session;
    if (!s) throw new SignedOut();
    if (Date.now() >= s.expiresAt) {
      signOut('Your session expired. Sign in again.');
      throw new SignedOut();
    }
    const headers = { Authorization: 'Bearer ' + s.token };
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(path, {
        method: opts.method || 'GET',
        headers: headers,
        body: body,
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch (_) {
      throw new ApiError(0, 'The review service could not be reached. Check the connection and try again.');
    }
    if (state.session !== s) throw new SignedOut();
    if (res.status === 401) {
      signOut('The server did not accept your session (401): it may have expired. Sign in again.');
      throw new SignedOut();
    }
    return res;
  }

  async function errorOf(res) {
    let message = '';
    try {
      const data = await res.json();
      if (data && typeof data.error === 'string') message = data.error;
    } catch (_) {
      // not JSON
    }
    return new ApiError(res.status, message || 'The server answered ' + res.status + (res.statusText ? ' ' + res.statusText : '') + '.');
  }

  async function apiJson(path, options) {
    const res = await api(path, options);
    if (!res.ok) throw await errorOf(res);
    try {
      return await res.json();
    } catch (_) {
      throw new ApiError(res.status, 'The server sent an answer this page cannot read.');
    }
  }

  // Show an error in `node`, unless it is the sign-out that already took the user away.
  function report(err, node) {
    if (err instanceof SignedOut) return;
    showMessage(node, err && err.message ? err.message : String(err));
  }

  async function loadMe() {
    const me = await apiJson('api/me');
    state.me = me;
    renderHeader();
    if (state.current) updateRevealButton();
    return me;
  }

  // ---------------------------------------------------------------------------------------
  // Views and routing

  const VIEWS = ['signin', 'queue', 'case', 'me', 'audit'];

  function showView(name) {
    for (const v of VIEWS) $('view-' + v).hidden = v !== name;
    const changed = state.view !== name;
    state.view = name;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.getAttribute('data-nav') === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    return changed;
  }

  function focusHeading(id) {
    const h = $(id);
    if (h) h.focus({ preventScroll: false });
  }

  function renderHeader() {
    const signedIn = state.session !== null;
    $('nav').hidden = !signedIn;
    $('signout').hidden = !signedIn;
    $('whoami').hidden = !signedIn;
    if (signedIn) {
      const role = state.me && state.me.role ? ' (' + state.me.role + ')' : '';
      setText($('whoami'), 'Signed in as ' + state.session.user + role);
      const auditLink = document.querySelector('[data-nav="audit"]');
      auditLink.hidden = !!(state.me && state.me.role && state.me.role !== 'admin');
    }
  }

  function showSignIn(message) {
    showView('signin');
    document.title = 'Sign in · hashgate review';
    showMessage($('signin-message'), message || '');
    showMessage($('signin-error'), '');
    $('signin-password').value = '';
    $('signin-submit').disabled = false;
    if (!config.clientId || !config.idpEndpoint) {
      showMessage($('signin-error'), 'Sign-in is not configured on this server (no client id or identity provider).');
    }
    focusHeading('signin-title');
    $('signin-user').focus();
  }

  function parseHash() {
    const hash = location.hash.replace(/^#\/?/, '');
    const q = hash.indexOf('?');
    const path = q === -1 ? hash : hash.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : hash.slice(q + 1));
    const parts = path.split('/');
    let arg = null;
    if (parts.length > 1) {
      try {
        arg = decodeURIComponent(parts.slice(1).join('/'));
      } catch (_) {
        arg = null;
      }
    }
    return { view: parts[0] || 'queue', arg: arg, query: query };
  }

  function route() {
    const { view, arg, query } = parseHash();
    if (!state.session) {
      leaveCase();
      state.seq++;
      showSignIn($('signin-message').hidden ? '' : $('signin-message').textContent);
      return;
    }
    if (view === 'case' && state.current && arg === state.current.id) {
      // The case already open (or loading): nothing to reload.
      showView('case');
      return;
    }
    leaveCase();
    state.seq++;
    showMessage($('banner'), '');
    renderHeader();
    if (view === 'case' && arg) showCase(arg);
    else if (view === 'me') showMe();
    else if (view === 'audit') showAudit();
    else if (view === 'queue' || view === '' || view === 'signin') showQueue(query);
    else {
      location.replace('#/queue');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Queue

  const FILTERS = ['status', 'list', 'category', 'bucket', 'kind'];

  function filtersFrom(query) {
    const params = new URLSearchParams();
    for (const f of FILTERS) {
      const v = (query.get(f) || '').trim();
      if (v) params.set(f, v);
    }
    return params;
  }

  function showQueue(query) {
    const params = filtersFrom(query);
    const changed = showView('queue');
    document.title = 'Queue · hashgate review';
    for (const f of FILTERS) $('filter-' + f).value = params.get(f) || '';
    const key = params.toString();
    try {
      sessionStorage.setItem(QUEUE_KEY, key);
    } catch (_) {
      // the queue order is then only kept in memory
    }
    // Always reload: statuses change as reviewers decide.
    state.queue = { key: key, items: [], cursor: null, loaded: false, selected: -1, loading: null };
    clear($('queue-rows'));
    setText($('queue-status'), 'Loading cases…');
    $('queue-more').hidden = true;
    if (changed) focusHeading('queue-title');
    const seq = state.seq;
    loadQueuePage(seq).then(() => {
      if (seq !== state.seq) return;
      const i = lastOpened ? state.queue.items.findIndex((c) => c.case_id === lastOpened) : -1;
      if (i >= 0) select(i, false);
    });
  }

  let lastOpened = null;

  // Load the next page of the current queue (the first when none is loaded).
  function loadQueuePage(seq) {
    const q = state.queue;
    if (q.loading) return q.loading;
    if (q.loaded && !q.cursor) return Promise.resolve();
    const params = new URLSearchParams(q.key || '');
    params.set('limit', String(PAGE_SIZE));
    if (q.cursor) params.set('cursor', q.cursor);
    $('queue-more').disabled = true;
    q.loading = apiJson('api/cases?' + params.toString())
      .then((data) => {
        if (state.queue !== q) return;
        const items = Array.isArray(data.items) ? data.items : [];
        q.items.push(...items);
        q.cursor = typeof data.next_cursor === 'string' && data.next_cursor ? data.next_cursor : null;
        q.loaded = true;
        if (seq === undefined || seq === state.seq) renderQueueRows(items);
      })
      .catch((err) => {
        if (state.queue !== q) return;
        if (state.view === 'queue') report(err, $('queue-status'));
        else report(err, $('banner'));
        throw err;
      })
      .finally(() => {
        q.loading = null;
        $('queue-more').disabled = false;
      });
    return q.loading.catch(() => {});
  }

  function renderQueueRows(added) {
    const body = $('queue-rows');
    const start = body.rows.length;
    added.forEach((item, n) => body.append(queueRow(item, start + n)));
    const count = state.queue.items.length;
    const filtered = state.queue.key ? ' matching the filters' : '';
    setText($('queue-status'), count === 0 ? 'No cases' + filtered + '.' : count + (count === 1 ? ' case' : ' cases') + filtered + ', oldest first' + (state.queue.cursor ? '; more to load.' : '.'));
    $('queue-more').hidden = !state.queue.cursor;
  }

  function queueRow(item, index) {
    const matches = Array.isArray(item.matches) ? item.matches : [];
    const link = el('a', { href: caseHref(item.case_id), 'data-case-id': item.case_id }, item.key ? String(item.key) : String(item.case_id));
    const tr = el('tr', { 'data-case-id': item.case_id, 'data-index': index },
      el('td', null, statusEl(item.status)),
      el('td', { class: 'nowrap' }, timeEl(item.created_at)),
      el('td', { class: 'key' }, el('span', { class: 'bucket', text: orDash(item.bucket) + ' / ' }), link),
      el('td', null, matches.length === 0 ? el('span', { class: 'hint', text: 'none recorded' }) :
        matches.map((m) => el('div', null, orDash(m.list) + ' · ' + (m.category ? String(m.category) : 'no category') + ' · ' + matchKind(m))))
    );
    link.addEventListener('focus', () => select(index, false));
    return tr;
  }

  function select(index, focus) {
    const rows = $('queue-rows').rows;
    if (rows.length === 0) return;
    const i = Math.max(0, Math.min(index, rows.length - 1));
    if (state.queue.selected >= 0 && rows[state.queue.selected]) rows[state.queue.selected].classList.remove('selected');
    state.queue.selected = i;
    rows[i].classList.add('selected');
    if (focus) {
      const a = rows[i].querySelector('a');
      if (a && document.activeElement !== a) a.focus();
      rows[i].scrollIntoView({ block: 'nearest' });
    }
  }

  async function moveInQueue(delta) {
    const q = state.queue;
    const target = q.selected < 0 ? (delta > 0 ? 0 : q.items.length - 1) : q.selected + delta;
    if (target >= q.items.length && q.cursor) {
      await loadQueuePage(state.seq);
    }
    if (target >= 0 && target < state.queue.items.length) select(target, true);
  }

  // ---------------------------------------------------------------------------------------
  // Case

  function showCase(id) {
    showView('case');
    document.title = 'Case · hashgate review';
    if (state.current && state.current.id === id) return;
    lastOpened = id;
    state.current = { id: id, data: null, audit: [], preview: null, revealed: null, revealTimer: null, revealTick: null, previewNone: false };
    const seq = state.seq;
    setText($('case-title'), 'Case ' + id);
    clear($('case-status'));
    showMessage($('case-error'), '');
    $('case-body').hidden = true;
    for (const id2 of ['case-match-list', 'preview-box', 'case-details']) clear($(id2));
    for (const id2 of ['case-reviews', 'case-audit']) clear($(id2).tBodies[0]);
    resetDecisionForm();
    resetRevealForm();
    renderPosition();
    focusHeading('case-title');
    apiJson(apiPath('cases', id))
      .then((data) => {
        if (seq !== state.seq || !state.current || state.current.id !== id) return;
        if (!data || !data.case) throw new ApiError(0, 'The server sent no case.');
        renderCase(data.case, data.audit);
        $('case-body').hidden = false;
        loadPreview(id);
      })
      .catch((err) => {
        if (seq !== state.seq) return;
        if (err instanceof ApiError && err.status === 404) showMessage($('case-error'), 'There is no case ' + id + '. ' + err.message);
        else report(err, $('case-error'));
      });
    ensureQueueForNavigation();
  }

  // The queue order j/k follow: the loaded queue, or the last filter's first page.
  function ensureQueueForNavigation() {
    if (state.queue.loaded || state.queue.loading) {
      renderPosition();
      return;
    }
    let key = '';
    try {
      key = sessionStorage.getItem(QUEUE_KEY) || '';
    } catch (_) {
      key = '';
    }
    state.queue = { key: key, items: [], cursor: null, loaded: false, selected: -1, loading: null };
    loadQueuePage(-1).then(renderPosition);
  }

  function renderPosition() {
    const cur = state.current;
    const items = state.queue.items;
    const i = cur ? items.findIndex((c) => c.case_id === cur.id) : -1;
    setText($('case-position'), i >= 0 ? (i + 1) + ' of ' + items.length + (state.queue.cursor ? '+' : '') + ' in the queue' : '');
    $('case-prev').disabled = items.length === 0 || i === 0;
    $('case-next').disabled = items.length === 0 || (i === items.length - 1 && !state.queue.cursor);
  }

  async function moveCase(delta) {
    const cur = state.current;
    if (!cur) return;
    if (state.queue.loading) await state.queue.loading.catch(() => {});
    const items = state.queue.items;
    const i = items.findIndex((c) => c.case_id === cur.id);
    const target = i === -1 ? 0 : i + delta;
    if (target >= items.length && state.queue.cursor) {
      await loadQueuePage(-1);
    }
    if (!state.current || state.current.id !== cur.id) return;
    const next = state.queue.items[target];
    if (target < 0 || !next) {
      showMessage($('banner'), delta > 0 ? 'This is the last case in the queue.' : 'This is the first case in the queue.');
      return;
    }
    location.hash = caseHref(next.case_id);
  }

  function renderCase(c, audit) {
    const cur = state.current;
    cur.data = c;
    if (Array.isArray(audit)) cur.audit = audit;
    setText($('case-title'), 'Case ' + orDash(c.case_id || cur.id));
    clear($('case-status'));
    $('case-status').append(statusEl(c.status));
    renderMatches(c);
    renderDetails(c);
    renderReviews(c);
    renderAudit(cur.audit);
    renderDecisionAvailability(c);
    renderPosition();
  }

  // Exact (the same bytes) or perceptual (a PDQ hash within a distance: a re-encoded,
  // resized or edited copy of the listed image; the smaller the distance, the closer).
  function matchKind(m) {
    if (typeof m.distance === 'number') return 'perceptual (PDQ), distance ' + m.distance + ' of 256 bits';
    return 'exact';
  }

  function renderMatches(c) {
    const list = $('case-match-list');
    clear(list);
    const matches = Array.isArray(c.matches) ? c.matches : [];
    if (matches.length === 0) {
      list.append(el('li', null, el('span', { class: 'hint', text: 'No match is recorded on this case.' })));
      return;
    }
    for (const m of matches) {
      list.append(el('li', { class: 'match' },
        el('div', { class: 'headline' },
          'Category: ', el('strong', { class: 'match-category', text: m.category ? String(m.category) : 'not given by the list' }),
          ' · List: ', el('strong', { class: 'match-list-name', text: orDash(m.list) }),
          ' · Match: ', el('strong', { class: 'match-kind', text: matchKind(m) })),
        el('div', { class: 'sub' },
          orDash(m.algorithm) + ' ', el('code', { text: orDash(m.digest) }),
          m.id ? ' · entry ' + String(m.id) : ' · no entry id')));
    }
  }

  function detail(dl, term, value) {
    const dd = el('dd');
    if (value instanceof Node) dd.append(value);
    else if (Array.isArray(value)) value.forEach((v) => dd.append(v instanceof Node ? v : el('div', { text: v })));
    else setText(dd, orDash(value));
    dl.append(el('dt', { text: term }), dd);
  }

  function digestLines(digests) {
    if (!digests) return [];
    const pairs = Array.isArray(digests) ? digests : Object.entries(digests);
    return pairs.map((d) => {
      const algorithm = Array.isArray(d) ? d[0] : d && d.algorithm;
      const hex = Array.isArray(d) ? d[1] : d && d.digest;
      return el('div', null, orDash(algorithm) + ' ', el('code', { text: orDash(hex) }));
    });
  }

  function renderDetails(c) {
    const dl = $('case-details');
    clear(dl);
    const o = c.object || {};
    const q = c.quarantine;
    const r = c.restored_to;
    detail(dl, 'Bucket', o.bucket);
    detail(dl, 'Key', el('code', { text: orDash(o.key) }));
    detail(dl, 'Version', o.version_id || 'none (unversioned)');
    detail(dl, 'ETag', o.etag);
    detail(dl, 'Size', formatBytes(c.size));
    detail(dl, 'Content type', c.content_type || 'not recorded');
    const digests = digestLines(c.digests);
    detail(dl, 'Digests', digests.length ? digests : 'none recorded');
    detail(dl, 'Quarantine', q ? el('code', { text: orDash(q.bucket) + '/' + orDash(q.key) }) : 'not quarantined');
    detail(dl, 'Uploaded', timeEl(c.uploaded_at));
    detail(dl, 'Case opened', timeEl(c.created_at));
    detail(dl, 'Classification', c.classification || 'none yet');
    if (r) detail(dl, 'Restored to', el('code', { text: orDash(r.bucket) + '/' + orDash(r.key) }));
    const pending = Array.isArray(c.followups) ? c.followups : [];
    if (pending.length) {
      // What the decision left undone (an admin finishes it); the decision itself stands.
      const names = { report_package: 'report package', share_confirmed: 'own list', list_feedback: 'list feedback' };
      detail(dl, 'Still to do', pending.map((f) => names[f] || f).join(', ') + ' (an admin can finish it)');
    }
    const hold = c.legal_hold;
    if (hold) detail(dl, 'Legal hold', 'since ' + orDash(hold.at) + ' by ' + orDash(hold.by) + ': ' + orDash(hold.reason));
  }

  function renderReviews(c) {
    const table = $('case-reviews');
    const body = table.tBodies[0];
    clear(body);
    const reviews = Array.isArray(c.reviews) ? c.reviews : [];
    for (const r of reviews) {
      body.append(el('tr', null,
        el('td', { class: 'nowrap' }, timeEl(r.at)),
        el('td', { class: 'nowrap', text: orDash(r.reviewer) }),
        el('td', { text: DECISION_LABELS[r.decision] ? r.decision.replace('_', ' ') : orDash(r.decision) }),
        el('td', { text: orDash(r.classification) }),
        el('td', { text: orDash(r.reason) })));
    }
    table.hidden = reviews.length === 0;
    $('case-reviews-empty').hidden = reviews.length !== 0;
  }

  function detailText(d) {
    if (d === null || d === undefined || d === '') return '';
    if (typeof d === 'string') return d;
    try {
      return JSON.stringify(d);
    } catch (_) {
      return String(d);
    }
  }

  function renderAudit(entries) {
    const body = $('case-audit').tBodies[0];
    clear(body);
    const list = Array.isArray(entries) ? entries.slice() : [];
    list.sort((a, b) => (Number(a.seq) || 0) - (Number(b.seq) || 0));
    if (list.length === 0) {
      body.append(el('tr', null, el('td', { colspan: 7, class: 'hint', text: 'No audit entries were returned.' })));
      return;
    }
    for (const a of list) {
      body.append(el('tr', { 'data-action': String(a.action || '') },
        el('td', { class: 'nowrap', text: orDash(a.seq) }),
        el('td', { class: 'nowrap' }, timeEl(a.at)),
        el('td', { class: 'nowrap', text: orDash(a.actor) }),
        el('td', { class: 'action nowrap', text: orDash(a.action) }),
        el('td', { class: 'nowrap', text: orDash(a.address) }),
        el('td', { text: orDash(a.reason) }),
        el('td', { class: 'detail', title: a.hash ? 'entry hash ' + String(a.hash) : null, text: detailText(a.detail) })));
    }
  }

  // Refresh the case (and its audit history) from the server.
  async function refreshCase() {
    const cur = state.current;
    if (!cur) return;
    const seq = state.seq;
    const data = await apiJson(apiPath('cases', cur.id));
    if (seq !== state.seq || state.current !== cur) return;
    if (data && data.case) renderCase(data.case, data.audit);
  }

  // ---------------------------------------------------------------------------------------
  // Preview and reveal

  function previewPlaceholder(title, reason) {
    const box = $('preview-box');
    clear(box);
    box.append(el('div', { class: 'preview-none', id: 'preview-none', role: 'note' },
      el('strong', { text: title }), reason ? String(reason) : ''));
  }

  async function loadPreview(id) {
    const cur = state.current;
    const seq = state.seq;
    previewPlaceholder('Loading the preview…', '');
    let res;
    try {
      res = await api(apiPath('cases', id, 'preview'));
    } catch (err) {
      if (err instanceof SignedOut || state.current !== cur) return;
      previewPlaceholder('No preview', err.message);
      cur.previewNone = true;
      updateRevealButton();
      return;
    }
    if (seq !== state.seq || state.current !== cur) return;
    const type = (res.headers.get('Content-Type') || '').toLowerCase();
    if (type.startsWith('application/json')) {
      let data = {};
      try {
        data = await res.json();
      } catch (_) {
        data = {};
      }
      if (state.current !== cur) return;
      const reason = res.ok ? data.reason || 'The server has no preview for this file.' : data.error || 'The server answered ' + res.status + '.';
      previewPlaceholder('No preview', reason);
      cur.previewNone = true;
      updateRevealButton();
      return;
    }
    if (!res.ok || !type.startsWith('image/')) {
      previewPlaceholder('No preview', res.ok ? 'The server sent something other than an image.' : 'The server answered ' + res.status + '.');
      cur.previewNone = true;
      updateRevealButton();
      return;
    }
    const blob = await res.blob();
    if (state.current !== cur) return;
    const url = URL.createObjectURL(blob);
    if (cur.preview) URL.revokeObjectURL(cur.preview);
    cur.preview = url;
    cur.previewNone = false;
    const img = el('img', {
      id: 'preview-image',
      class: 'blurred',
      'data-state': 'blurred',
      alt: 'Preview of the case’s file, blurred and in grayscale',
      draggable: 'false',
    });
    img.addEventListener('contextmenu', (e) => e.preventDefault());
    img.src = url;
    const box = $('preview-box');
    clear(box);
    box.append(img);
    updateRevealButton();
  }

  function resetRevealForm() {
    $('reveal-form').hidden = false;
    $('reveal-reason').value = '';
    showMessage($('reveal-error'), '');
    showMessage($('reveal-remaining'), '');
    $('reveal-countdown').hidden = true;
    $('reblur-button').hidden = true;
    $('reveal-button').disabled = true;
    setText($('reveal-button'), 'Reveal');
  }

  function updateRevealButton() {
    const cur = state.current;
    const hasReason = $('reveal-reason').value.trim() !== '';
    const ready = !!(cur && cur.preview && !cur.previewNone && !cur.revealed && !cur.revealing);
    $('reveal-button').disabled = !(hasReason && ready);
    const seconds = revealSecondsDefault();
    setText($('reveal-button'), 'Reveal for ' + seconds + ' s');
    // Nothing to reveal without a preview.
    const none = !!(cur && cur.previewNone);
    $('reveal-reason').disabled = none;
    $('reveal-form').hidden = none;
  }

  function revealSecondsDefault() {
    const s = state.me && Number(state.me.reveal_seconds);
    return s > 0 ? s : DEFAULT_REVEAL_SECONDS;
  }

  async function reveal() {
    const cur = state.current;
    const reason = $('reveal-reason').value.trim();
    if (!cur || !reason || cur.revealed || cur.revealing) return;
    showMessage($('reveal-error'), '');
    cur.revealing = true;
    updateRevealButton();
    try {
      const res = await api(apiPath('cases', cur.id, 'reveal'), { method: 'POST', body: { reason: reason } });
      if (state.current !== cur) return;
      if (res.status === 429) {
        const err = await errorOf(res);
        showMessage($('reveal-error'), 'Daily reveal limit reached: ' + err.message);
        return;
      }
      if (!res.ok) throw await errorOf(res);
      const type = (res.headers.get('Content-Type') || '').toLowerCase();
      if (!type.startsWith('image/')) throw new ApiError(res.status, 'The server sent something other than an image.');
      let seconds = parseInt(res.headers.get('X-Reveal-Seconds') || '', 10);
      if (!(seconds > 0)) seconds = revealSecondsDefault();
      seconds = Math.min(seconds, MAX_REVEAL_SECONDS);
      const remaining = res.headers.get('X-Reveals-Remaining');
      const blob = await res.blob();
      if (state.current !== cur) return;
      const img = $('preview-image');
      if (!img) return;
      const url = URL.createObjectURL(blob);
      cur.revealed = url;
      // The new image stays under the page's blur until it is decoded, so nothing unblurred
      // ever shows before the countdown starts.
      img.src = url;
      try {
        await img.decode();
      } catch (_) {
        // shown anyway once loaded
      }
      if (state.current !== cur || cur.revealed !== url) return;
      img.className = 'revealed';
      img.setAttribute('data-state', 'revealed');
      img.alt = 'Revealed preview of the case’s file, less blurred';
      $('reveal-reason').value = '';
      if (remaining !== null && remaining !== '') {
        showMessage($('reveal-remaining'), 'Reveals left today: ' + remaining + '.');
      }
      startCountdown(cur, seconds);
    } catch (err) {
      if (state.current === cur) report(err, $('reveal-error'));
    } finally {
      cur.revealing = false;
      if (state.current === cur) updateRevealButton();
    }
  }

  function startCountdown(cur, seconds) {
    const ends = Date.now() + seconds * 1000;
    const box = $('reveal-countdown');
    const secs = el('span', { class: 'secs', id: 'reveal-seconds', text: String(seconds) });
    clear(box);
    box.append('Revealed. It blurs again in ', secs, ' s.');
    box.hidden = false;
    box.setAttribute('data-seconds', String(seconds));
    $('reblur-button').hidden = false;
    cur.revealTick = setInterval(() => {
      const left = Math.max(0, Math.ceil((ends - Date.now()) / 1000));
      setText(secs, left);
    }, 250);
    cur.revealTimer = setTimeout(() => reblur(cur), seconds * 1000);
  }

  // Back to the blurred preview; the revealed image's bytes are released.
  function reblur(cur) {
    if (!cur || !cur.revealed) return;
    clearTimeout(cur.revealTimer);
    clearInterval(cur.revealTick);
    cur.revealTimer = null;
    cur.revealTick = null;
    const img = document.getElementById('preview-image');
    if (img && state.current === cur) {
      img.className = 'blurred';
      img.setAttribute('data-state', 'blurred');
      img.alt = 'Preview of the case’s file, blurred and in grayscale';
      if (cur.preview) img.src = cur.preview;
      else img.removeAttribute('src');
    }
    URL.revokeObjectURL(cur.revealed);
    cur.revealed = null;
    if (state.current === cur) {
      const box = $('reveal-countdown');
      clear(box);
      box.append('Blurred again.');
      box.removeAttribute('data-seconds');
      $('reblur-button').hidden = true;
      updateRevealButton();
    }
  }

  // Leaving a case: blur, stop timers, release every image.
  function leaveCase() {
    const cur = state.current;
    if (!cur) return;
    reblur(cur);
    if (cur.preview) URL.revokeObjectURL(cur.preview);
    cur.preview = null;
    const img = document.getElementById('preview-image');
    if (img) img.remove();
    clear($('preview-box'));
    $('reveal-countdown').hidden = true;
    state.current = null;
  }

  // ---------------------------------------------------------------------------------------
  // Decisions

  function resetDecisionForm() {
    const form = $('decision-form');
    for (const r of form.querySelectorAll('input[name="decision"]')) r.checked = false;
    $('decision-classification').value = '';
    $('decision-reason').value = '';
    showMessage($('decision-error'), '');
    showMessage($('decision-done'), '');
    showMessage($('decision-note'), '');
    $('classification-field').hidden = true;
    setDecisionEnabled(true);
    updateDecisionButton();
  }

  function setDecisionEnabled(enabled) {
    for (const c of $('decision-form').querySelectorAll('input, select, textarea')) c.disabled = !enabled;
  }

  function chosenDecision() {
    const r = $('decision-form').querySelector('input[name="decision"]:checked');
    return r ? r.value : '';
  }

  function updateDecisionButton() {
    const decision = chosenDecision();
    const reason = $('decision-reason').value.trim();
    const cls = $('decision-classification').value;
    $('classification-field').hidden = decision !== 'confirm';
    showMessage($('decision-note'), decision ? DECISION_NOTES[decision] : '');
    const button = $('decision-submit');
    const closed = state.current && state.current.data && CLOSED.has(state.current.data.status);
    let label;
    if (closed) label = 'Case closed';
    else if (!decision) label = 'Choose a decision';
    else if (decision === 'confirm' && !CLASSIFICATIONS.has(cls)) label = 'Choose a classification';
    else if (!reason) label = 'Give a reason';
    else label = DECISION_LABELS[decision];
    setText(button, label);
    button.disabled = !!closed || !decision || !reason || (decision === 'confirm' && !CLASSIFICATIONS.has(cls)) || !!(state.current && state.current.deciding);
  }

  function renderDecisionAvailability(c) {
    const closed = CLOSED.has(c.status);
    setDecisionEnabled(!closed);
    if (closed && $('decision-done').hidden) {
      showMessage($('decision-done'), 'This case is closed (' + (STATUS_LABELS[c.status] || c.status) + '): no further decisions.');
    }
    updateDecisionButton();
  }

  // A shortcut chose a decision: select it and go to the first field still needed.
  function chooseDecision(decision) {
    const cur = state.current;
    if (!cur || !cur.data || CLOSED.has(cur.data.status)) return;
    const radio = $('decision-form').querySelector('input[name="decision"][value="' + decision + '"]');
    if (!radio || radio.disabled) return;
    radio.checked = true;
    updateDecisionButton();
    const target = decision === 'confirm' && !CLASSIFICATIONS.has($('decision-classification').value) ? $('decision-classification') : $('decision-reason');
    target.focus();
    target.scrollIntoView({ block: 'nearest' });
  }

  async function submitDecision() {
    const cur = state.current;
    if (!cur || cur.deciding) return;
    const decision = chosenDecision();
    const reason = $('decision-reason').value.trim();
    const classification = $('decision-classification').value;
    showMessage($('decision-error'), '');
    showMessage($('decision-done'), '');
    if (!decision) return showMessage($('decision-error'), 'Choose a decision first.');
    if (!reason) return showMessage($('decision-error'), 'Every decision needs a reason.');
    if (decision === 'confirm' && !CLASSIFICATIONS.has(classification)) {
      return showMessage($('decision-error'), 'Confirming needs a classification (A1, A2, B1 or B2).');
    }
    const body = { decision: decision, reason: reason };
    if (decision === 'confirm') body.classification = classification;
    cur.deciding = true;
    updateDecisionButton();
    try {
      const data = await apiJson(apiPath('cases', cur.id, 'decision'), { method: 'POST', body: body });
      if (state.current !== cur) return;
      const before = cur.data ? cur.data.status : null;
      if (data && data.case) {
        // A decision's answer may leave out what only the case view reads (the content type).
        const merged = Object.assign({}, data.case);
        if (merged.content_type == null && cur.data) merged.content_type = cur.data.content_type;
        renderCase(merged, data.audit);
      }
      resetDecisionForm();
      renderDecisionAvailability(cur.data);
      const now = cur.data ? cur.data.status : null;
      showMessage($('decision-done'), 'Decision recorded: ' + decision.replace('_', ' ') + '. Status: ' + (STATUS_LABELS[now] || now || 'unknown') + (before && before !== now ? ' (was ' + (STATUS_LABELS[before] || before) + ').' : '.'));
      if (!(data && Array.isArray(data.audit))) await refreshCase();
    } catch (err) {
      if (state.current !== cur) return;
      if (err instanceof ApiError && (err.status === 409 || err.status === 400 || err.status === 403 || err.status === 404)) {
        showMessage($('decision-error'), 'Not recorded: ' + err.message);
      } else {
        report(err, $('decision-error'));
      }
    } finally {
      cur.deciding = false;
      if (state.current === cur) updateDecisionButton();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Me and audit

  function showMe() {
    const changed = showView('me');
    document.title = 'My reveals · hashgate review';
    if (changed) focusHeading('me-title');
    showMessage($('me-error'), '');
    const seq = state.seq;
    loadMe()
      .then((me) => {
        if (seq !== state.seq) return;
        setText($('me-user'), orDash(me.user));
        setText($('me-role'), orDash(me.role));
        const reveals = Array.isArray(me.reveals_today) ? me.reveals_today : [];
        const limit = Number(me.reveal_limit);
        setText($('me-count'), reveals.length + (limit >= 0 && Number.isFinite(limit) ? ' of ' + limit : ''));
        $('me-count').setAttribute('data-count', String(reveals.length));
        const meter = $('me-meter');
        meter.max = limit > 0 ? limit : 1;
        meter.value = reveals.length;
        meter.high = Math.max(0, (limit > 0 ? limit : 1) * 0.8);
        setText($('me-seconds'), (Number(me.reveal_seconds) > 0 ? me.reveal_seconds : DEFAULT_REVEAL_SECONDS) + ' seconds');
        const body = $('me-reveals').tBodies[0];
        clear(body);
        for (const r of reveals) {
          body.append(el('tr', null, el('td', null, timeEl(r.at)),
            el('td', null, el('a', { href: caseHref(r.case_id), text: orDash(r.case_id) }))));
        }
        $('me-reveals').hidden = reveals.length === 0;
        $('me-empty').hidden = reveals.length !== 0;
        $('me-body').hidden = false;
      })
      .catch((err) => {
        if (seq === state.seq) report(err, $('me-error'));
      });
  }

  function showAudit() {
    const changed = showView('audit');
    document.title = 'Audit log · hashgate review';
    if (changed) focusHeading('audit-view-title');
    verifyAudit();
  }

  function verifyAudit() {
    const seq = state.seq;
    showMessage($('audit-error'), '');
    setText($('audit-verdict'), 'Verifying the chain…');
    $('audit-verdict').className = 'verdict';
    clear($('audit-details'));
    $('audit-body').hidden = false;
    $('audit-again').disabled = true;
    apiJson('api/audit/verify')
      .then((v) => {
        if (seq !== state.seq) return;
        const verdict = $('audit-verdict');
        verdict.className = 'verdict ' + (v.ok ? 'ok' : 'broken');
        verdict.setAttribute('data-ok', v.ok ? 'true' : 'false');
        setText(verdict, v.ok ? 'The audit chain verifies: every entry is intact and in order.' : 'The audit chain is broken.');
        const dl = $('audit-details');
        detail(dl, 'Entries', orDash(v.entries));
        detail(dl, 'Head', v.head ? 'entry ' + orDash(v.head.seq) + ', hash ' + orDash(v.head.hash) : 'none (empty log)');
        detail(dl, 'Signed checkpoints', orDash(v.checkpoints));
        detail(dl, 'First broken entry', v.first_broken ? 'entry ' + orDash(v.first_broken.seq) + ': ' + orDash(v.first_broken.reason) : 'none');
      })
      .catch((err) => {
        if (seq !== state.seq) return;
        $('audit-body').hidden = true;
        if (err instanceof ApiError && err.status === 403) {
          showMessage($('audit-error'), 'Admins only: verifying the audit log needs the admin role.');
        } else {
          report(err, $('audit-error'));
        }
      })
      .finally(() => {
        $('audit-again').disabled = false;
      });
  }

  // ---------------------------------------------------------------------------------------
  // Keyboard

  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    return /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName);
  }

  function onKey(ev) {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) return;
    const help = $('help');
    if (help.open) {
      if (ev.key === '?') {
        help.close();
        ev.preventDefault();
      }
      return;
    }
    if (typing(ev.target)) {
      // Escape leaves a field, so the shortcuts work again.
      if (ev.key === 'Escape' && state.view !== 'signin') ev.target.blur();
      return;
    }
    if (ev.key === '?') {
      openHelp();
      ev.preventDefault();
      return;
    }
    if (!state.session) return;
    let handled = true;
    if (state.view === 'queue') {
      if (ev.key === 'j' || ev.key === 'ArrowRight') moveInQueue(1);
      else if (ev.key === 'k' || ev.key === 'ArrowLeft') moveInQueue(-1);
      else handled = false;
    } else if (state.view === 'case') {
      if (ev.key === 'j' || ev.key === 'ArrowRight') moveCase(1);
      else if (ev.key === 'k' || ev.key === 'ArrowLeft') moveCase(-1);
      else if (ev.key === 'c') chooseDecision('confirm');
      else if (ev.key === 'f') chooseDecision('false_positive');
      else if (ev.key === 'e') chooseDecision('escalate');
      else if (ev.key === 'r') {
        const input = $('reveal-reason');
        if (!input.disabled) {
          input.focus();
          input.scrollIntoView({ block: 'nearest' });
        }
      } else handled = false;
    } else {
      handled = false;
    }
    if (handled) ev.preventDefault();
  }

  function openHelp() {
    const help = $('help');
    if (!help.open) help.showModal();
  }

  // ---------------------------------------------------------------------------------------
  // Wiring

  function wire() {
    $('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const username = $('signin-user').value.trim();
      const password = $('signin-password').value;
      showMessage($('signin-error'), '');
      if (!username || !password) {
        showMessage($('signin-error'), 'Enter your user name and password.');
        return;
      }
      $('signin-submit').disabled = true;
      setText($('signin-submit'), 'Signing in…');
      try {
        const session = await initiateAuth(username, password);
        $('signin-password').value = '';
        showMessage($('signin-message'), '');
        startSession(session);
        renderHeader();
        loadMe().catch(() => {});
        route();
      } catch (err) {
        $('signin-password').value = '';
        showMessage($('signin-error'), err.message);
        $('signin-password').focus();
      } finally {
        $('signin-submit').disabled = false;
        setText($('signin-submit'), 'Sign in');
      }
    });

    $('signout').addEventListener('click', () => {
      signOut('You are signed out.');
      history.replaceState(null, '', '#/queue');
    });

    $('queue-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const params = new URLSearchParams();
      for (const f of FILTERS) {
        const v = $('filter-' + f).value.trim();
        if (v) params.set(f, v);
      }
      const s = params.toString();
      const target = '#/queue' + (s ? '?' + s : '');
      if (location.hash === target) route();
      else location.hash = target;
    });
    $('filter-clear').addEventListener('click', () => {
      for (const f of FILTERS) $('filter-' + f).value = '';
      if (location.hash === '#/queue') route();
      else location.hash = '#/queue';
    });
    $('queue-more').addEventListener('click', () => loadQueuePage(state.seq));

    $('case-prev').addEventListener('click', () => moveCase(-1));
    $('case-next').addEventListener('click', () => moveCase(1));

    $('reveal-reason').addEventListener('input', updateRevealButton);
    $('reveal-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      reveal();
    });
    $('reblur-button').addEventListener('click', () => reblur(state.current));

    const form = $('decision-form');
    form.addEventListener('change', updateDecisionButton);
    form.addEventListener('input', updateDecisionButton);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submitDecision();
    });

    $('audit-again').addEventListener('click', verifyAudit);

    $('help-button').addEventListener('click', openHelp);
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', route);

    // A revealed image never outlives the reviewer's attention.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden' && state.current) reblur(state.current);
    });
    window.addEventListener('pagehide', () => leaveCase());
  }

  function start() {
    wire();
    const session = loadSession();
    if (session && Date.now() < session.expiresAt) {
      state.session = session;
      scheduleExpiry();
      loadMe().catch(() => {});
    } else if (session) {
      sessionStorage.removeItem(SESSION_KEY);
      showMessage($('signin-message'), 'Your session expired. Sign in again.');
    }
    renderHeader();
    if (!location.hash || location.hash === '#' || location.hash === '#/') history.replaceState(null, '', '#/queue');
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
