// berth's web UI: the repository, a page per model with a form built from its metadata, and live
// statistics. Everything goes through the public v2 API with the user's bearer token; the DOM is built
// with createElement and textContent only (no innerHTML), so no model name, reason or output is ever
// read as markup. The Content-Security-Policy forbids inline script and style: this file is the script.
'use strict';

(() => {
  const main = document.getElementById('main');
  const violations = [];
  window.berthCspViolations = violations;  // the browser tests read it
  document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));

  // ---- small DOM helpers ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c !== undefined && c !== null) node.append(c);
    }
    return node;
  }
  const svgNs = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(svgNs, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  const enc = encodeURIComponent;

  // ---- tokens and the API -----------------------------------------------------------------------------
  const tokens = {
    get inference() { return sessionStorage.getItem('berth.token') || ''; },
    get admin() { return sessionStorage.getItem('berth.admin') || ''; },
    set(inference, admin) {
      for (const [k, v] of [['berth.token', inference], ['berth.admin', admin]]) {
        if (v) sessionStorage.setItem(k, v); else sessionStorage.removeItem(k);
      }
    },
  };

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers);
    const token = options.admin ? tokens.admin : tokens.inference;
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(path, { method: options.method || 'GET', body: options.body, headers, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'the server did not answer (is it running?)');
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (res.ok && options.text) return text;
    if (!res.ok) {
      const message = json && typeof json.error === 'string' ? json.error : `HTTP ${res.status}`;
      if (res.status === 401) askForToken(options.admin ? 'This needs the model-control token.' : message);
      throw new ApiError(res.status, message);
    }
    return json;
  }
  const postJson = (path, body, extra = {}) => api(path, Object.assign(
    { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }, extra));

  // ---- the token panel --------------------------------------------------------------------------------
  const panel = document.getElementById('token-panel');
  const tokenButton = document.getElementById('token-button');
  function showPanel(show) {
    panel.hidden = !show;
    tokenButton.setAttribute('aria-expanded', String(show));
    if (show) document.getElementById('token-input').focus();
  }
  function askForToken(why) {
    document.getElementById('token-why').textContent =
      `${why} Enter the server's inference token to go on.`;
    if (panel.hidden) showPanel(true);  // once: polling 401s must not take the focus from the fields
  }
  tokenButton.addEventListener('click', () => showPanel(panel.hidden));
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    tokens.set(document.getElementById('token-input').value.trim(), document.getElementById('admin-input').value.trim());
    document.getElementById('token-why').textContent = '';
    showPanel(false);
    route();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    tokens.set('', '');
    document.getElementById('token-input').value = '';
    document.getElementById('admin-input').value = '';
    route();
  });

  // ---- pages: timers stop when the page changes -------------------------------------------------------
  let timers = [];
  let generation = 0;
  // Runs `fn` every `ms` while page `mine` is shown; a failed run shows its error in `status` (if given).
  function every(mine, ms, fn, status) {
    const tick = async () => {
      if (mine !== generation) return;
      try {
        await fn();
      } catch (e) {
        if (status && mine === generation) status.textContent = e.message;
      } finally {
        if (mine === generation) timers.push(setTimeout(tick, ms));
      }
    };
    tick();
  }
  function message(text, kind = 'error') {
    return el('p', { class: kind, role: kind === 'error' ? 'alert' : 'status', text });
  }

  function route() {
    generation += 1;
    timers.forEach(clearTimeout);
    timers = [];
    main.replaceChildren();
    let hash;
    try {
      hash = decodeURIComponent(location.hash.slice(1)) || '/';
    } catch (e) {
      hash = '/no-such-page';  // a malformed escape
    }
    const page = hash === '/' ? repositoryPage()
      : hash.startsWith('/models/') ? modelPage(hash.slice('/models/'.length))
        : hash === '/metrics' ? metricsPage()
          : hash === '/openapi' ? openApiPage()
            : Promise.resolve(main.append(message('No such page.')));
    const mine = generation;
    page.catch((e) => { if (mine === generation) main.append(message(e.message)); });
    for (const a of document.querySelectorAll('nav a')) {
      if (a.getAttribute('href') === `#${hash}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }
  window.addEventListener('hashchange', route);

  // ---- the repository ---------------------------------------------------------------------------------
  function stateBadge(state) {
    return el('span', { class: `state state-${String(state).toLowerCase()}`, text: state });
  }

  async function repositoryPage() {
    const mine = generation;
    const status = el('p', { class: 'muted', role: 'status' });
    const body = el('tbody');
    main.append(
      el('h1', { text: 'Models' }),
      status,
      el('div', { class: 'scroll' }, el('table', { class: 'models', id: 'models' },
        el('caption', { text: 'Every model and pipeline of the repository, with its state' }),
        el('thead', {}, el('tr', {}, ['Model', 'Version', 'State', 'Reason', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
        body)));
    const control = async (name, load, button) => {
      button.disabled = true;
      delete status.dataset.auto;  // the result stays until the next action
      status.textContent = `${load ? 'Loading' : 'Unloading'} ${name}…`;
      try {
        await api(`/v2/repository/models/${enc(name)}/${load ? 'load' : 'unload'}`, { method: 'POST', admin: true });
        status.textContent = `${name}: ${load ? 'loaded' : 'unloaded'}.`;
      } catch (e) {
        status.textContent = `${name}: ${e.message}`;
      }
      await refresh();
    };
    if (tokens.admin) {
      // In --model-control-mode explicit the index lists only the models loaded so far: load others by name.
      const name = el('input', { id: 'load-name', type: 'text', spellcheck: 'false', autocomplete: 'off' });
      const load = el('button', { type: 'submit', text: 'Load' });
      const form = el('form', { id: 'load-form', class: 'inline' },
        el('label', { for: 'load-name', text: 'Load a model of the repository by name' }), name, load);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (name.value.trim()) control(name.value.trim(), true, load).then(() => { load.disabled = false; });
      });
      main.append(form);
    }
    let shown = null;  // the index the table shows
    const refresh = async () => {
      let index;
      try {
        index = await postJson('/v2/repository/index', {});
      } catch (e) {
        status.textContent = e.message;
        return;
      }
      // Rows are rebuilt only when the index changed, so that the focus (a keyboard user on a button)
      // and a selection survive the polling.
      const text = JSON.stringify(index);
      if (text === shown) return;
      shown = text;
      body.replaceChildren(...index.map((m) => {
        const actions = el('td', { class: 'actions' });
        if (tokens.admin) {
          const load = el('button', { type: 'button', text: 'Load', 'aria-label': `Load ${m.name}` });
          load.addEventListener('click', () => control(m.name, true, load));
          const unload = el('button', { type: 'button', text: 'Unload', 'aria-label': `Unload ${m.name}` });
          unload.addEventListener('click', () => control(m.name, false, unload));
          actions.append(load, unload);
        }
        return el('tr', { 'data-model': m.name, 'data-state': m.state },
          el('th', { scope: 'row' }, el('a', { href: `#/models/${enc(m.name)}`, text: m.name })),
          el('td', { text: m.version || '—' }),
          el('td', {}, stateBadge(m.state)),
          el('td', { class: 'reason', text: m.reason || '' }),
          actions);
      }));
      if (!status.textContent || status.dataset.auto) {
        status.dataset.auto = '1';
        status.textContent = `${index.length} model version${index.length === 1 ? '' : 's'}; ` +
          `${index.filter((m) => m.state === 'READY').length} ready.` +
          (tokens.admin ? '' : ' Give the model-control token (Token) to load and unload.');
      }
    };
    every(mine, 3000, refresh, status);
  }

  // ---- a model: metadata, the try-it form, the answer, snippets ---------------------------------------
  const elements = (shape) => shape.reduce((n, d) => n * d, 1);
  const isFloat = (t) => ['FP16', 'BF16', 'FP32', 'FP64'].includes(t);

  function concreteShape(shape) { return shape.map((d) => (d < 0 ? 1 : d)); }

  // One input's controls, and a function that reads them into a v2 input (or throws with a reason).
  // `batched`: the first dimension is the batch (max_batch_size > 0), sent as 1; any other -1 needs JSON.
  function inputField(spec, onlyBytes, batched) {
    const id = `in-${spec.name}`;
    const box = el('fieldset', { class: 'input', 'data-input': spec.name },
      el('legend', {}, el('code', { text: spec.name }), ` ${spec.datatype} [${spec.shape.join(', ')}]`));
    const shape = concreteShape(spec.shape);
    const variable = spec.shape.some((d, i) => d < 0 && !(i === 0 && batched));
    if (spec.datatype === 'BYTES' && elements(shape) === 1 && !variable) {
      const text = el('textarea', { id, rows: 3, name: spec.name });
      box.append(el('label', { for: id, text: 'Text' }), text);
      let file = null;
      if (onlyBytes) {
        file = el('input', { type: 'file', id: `${id}-file` });
        box.append(el('label', { for: `${id}-file`, text: 'or a file (an image, a document): sent as it is' }), file);
      }
      return {
        box,
        file: () => (file && file.files.length ? file.files[0] : null),
        read: () => {
          if (!text.value) throw new Error(`${spec.name}: enter a text${file ? ' or choose a file' : ''}`);
          return { name: spec.name, datatype: 'BYTES', shape, data: [text.value] };
        },
      };
    }
    const count = elements(shape);
    if (spec.datatype !== 'BYTES' && !variable && count <= 64) {
      const grid = el('div', { class: 'grid' });
      const cells = [];
      for (let i = 0; i < count; i += 1) {
        const cell = el('input', {
          id: `${id}-${i}`, type: spec.datatype === 'BOOL' ? 'text' : 'number', step: 'any', inputmode: 'decimal',
          'aria-label': `${spec.name}[${i}]`, placeholder: '0',
        });
        cells.push(cell);
        grid.append(el('label', { class: 'cell', for: `${id}-${i}` }, el('span', { text: `${i}` }), cell));
      }
      const paste = el('input', { id: `${id}-paste`, type: 'text', placeholder: '1, 2, 3, …' });
      paste.addEventListener('change', () => {
        const parts = paste.value.split(/[\s,]+/).filter(Boolean);
        parts.slice(0, count).forEach((v, i) => { cells[i].value = v; });
      });
      box.append(el('label', { for: `${id}-paste`, text: `Paste ${count} values, or fill them in one by one` }), paste, grid);
      return {
        box,
        read: () => ({
          name: spec.name,
          datatype: spec.datatype,
          shape,
          data: cells.map((c, i) => parseValue(spec, c.value === '' ? '0' : c.value, i)),
        }),
      };
    }
    const shapeInput = el('input', { id: `${id}-shape`, type: 'text', value: JSON.stringify(shape) });
    const data = el('textarea', { id, rows: 4, placeholder: '[[0.1, 0.2, …]]' });
    box.append(el('label', { for: `${id}-shape`, text: 'Shape (JSON)' }), shapeInput,
      el('label', { for: id, text: 'Data (JSON: a flat or nested array)' }), data);
    return {
      box,
      read: () => {
        let s;
        let d;
        try { s = JSON.parse(shapeInput.value); } catch (e) { throw new Error(`${spec.name}: the shape is not JSON`); }
        try { d = JSON.parse(data.value); } catch (e) { throw new Error(`${spec.name}: the data is not JSON`); }
        return { name: spec.name, datatype: spec.datatype, shape: s, data: d };
      },
    };
  }

  function parseValue(spec, text, i) {
    if (spec.datatype === 'BOOL') {
      if (!['true', 'false', '0', '1'].includes(text)) throw new Error(`${spec.name}[${i}]: expected true or false`);
      return text === 'true' || text === '1';
    }
    const v = Number(text);
    if (!Number.isFinite(v)) throw new Error(`${spec.name}[${i}]: '${text}' is not a number`);
    if (!isFloat(spec.datatype) && !Number.isInteger(v)) throw new Error(`${spec.name}[${i}]: expected an integer`);
    return v;
  }

  // The request for a file: the binary tensor extension (a JSON header, then the bytes), so that the
  // outputs asked for (classification) go with it.
  function binaryRequest(spec, bytes, outputs) {
    const header = new TextEncoder().encode(JSON.stringify({
      inputs: [{ name: spec.name, datatype: 'BYTES', shape: concreteShape(spec.shape), parameters: { binary_data_size: bytes.byteLength + 4 } }],
      outputs,
    }));
    const body = new Uint8Array(header.byteLength + 4 + bytes.byteLength);
    body.set(header, 0);
    new DataView(body.buffer).setUint32(header.byteLength, bytes.byteLength, true);
    body.set(new Uint8Array(bytes), header.byteLength + 4);
    return { body, headerLength: header.byteLength };
  }

  const classificationPattern = /^(-?(?:[0-9.eE+-]+|nan|inf)):(\d+)(?::([\s\S]*))?$/;
  function scoreOf(text) {
    const t = text.replace(/^-/, '');
    const v = t === 'inf' ? Infinity : t === 'nan' ? NaN : Number(t);
    return text.startsWith('-') ? -v : v;
  }

  function bars(rows, name) {
    const finite = rows.map((r) => r.score).filter(Number.isFinite);
    const max = Math.max(...finite, 1e-12);
    const scale = finite.every((v) => v >= 0 && v <= 1) ? 1 : max;
    return el('ol', { class: 'bars', 'data-output': name }, rows.map((r) => {
      const fill = el('span', { class: 'fill' });
      fill.style.width = `${Number.isFinite(r.score) ? Math.max(0, Math.min(100, (100 * r.score) / scale)) : 0}%`;
      return el('li', { 'data-label': r.label, 'data-score': String(r.score) },
        el('span', { class: 'label', text: r.label }),
        el('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
        el('span', { class: 'score', text: r.score.toFixed(4) }));
    }));
  }

  function tensorTable(out) {
    const data = out.data || [];
    const shape = out.shape || [data.length];
    const cols = shape.length >= 2 ? shape[shape.length - 1] : data.length;
    const table = el('table', { class: 'tensor', 'data-output': out.name },
      el('caption', { text: `${out.name}: ${out.datatype} [${shape.join(', ')}]` }));
    const tbody = el('tbody');
    const shown = Math.min(data.length, 1000);
    for (let r = 0; r * cols < shown; r += 1) {
      tbody.append(el('tr', {}, data.slice(r * cols, Math.min((r + 1) * cols, shown))
        .map((v, c) => el('td', { class: 'value', 'data-index': String(r * cols + c), text: String(v) }))));
    }
    table.append(tbody);
    const wrap = el('div', { class: 'scroll' }, table);
    if (shown < data.length) wrap.append(message(`The first ${shown} of ${data.length} values.`, 'muted'));
    return wrap;
  }

  // `classified`: the names of the outputs the request asked the classification extension for.
  function renderOutput(out, classified) {
    const data = out.data || [];
    const section = el('section', { class: 'output', 'data-output': out.name }, el('h3', {}, el('code', { text: out.name })));
    const parsed = out.datatype === 'BYTES' && classified.has(out.name)
      ? data.map((s) => classificationPattern.exec(String(s))) : [];
    if (parsed.length && parsed.every(Boolean)) {
      section.append(bars(parsed.map((m) => ({ score: scoreOf(m[1]), label: m[3] !== undefined ? m[3] : `class ${m[2]}` })), out.name));
      return section;
    }
    const rows = (out.shape || []).slice(0, -1).reduce((n, d) => n * d, 1);
    const looksLikeProbabilities = isFloat(out.datatype) && rows === 1 && data.length >= 2 && data.length <= 1000 &&
      data.every((v) => v >= 0 && v <= 1) && Math.abs(data.reduce((a, b) => a + b, 0) - 1) < 1e-3;
    if (looksLikeProbabilities) {
      const top = data.map((score, i) => ({ score, label: `class ${i}` })).sort((a, b) => b.score - a.score).slice(0, 5);
      section.append(el('p', { class: 'muted', text: 'The top classes (the values sum to 1):' }), bars(top, out.name));
    }
    section.append(tensorTable(out));
    return section;
  }

  function latencyChart(samples, label) {
    const w = 300;
    const h = 60;
    const box = svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-label': label });
    if (samples.length > 1) {
      const max = Math.max(...samples) * 1.1 || 1;
      const pts = samples.map((v, i) => `${((i * w) / (samples.length - 1)).toFixed(1)},${(h - (v * h) / max).toFixed(1)}`);
      box.append(svg('polyline', { points: pts.join(' '), class: 'line' }));
    }
    return box;
  }

  function percentile(values, p) {
    if (!values.length) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }

  function snippets(name, request, file) {
    const origin = location.origin;
    const auth = tokens.inference ? " -H \"Authorization: Bearer $BERTH_TOKEN\"" : '';
    const authPy = tokens.inference ? ', headers={"Authorization": "Bearer " + os.environ["BERTH_TOKEN"]}' : '';
    const json = JSON.stringify(request);
    const shell = (text) => `'${text.replace(/'/g, "'\\''")}'`;
    const py = (text) => JSON.stringify(text);  // a JSON string is a valid Python string literal
    // Python literals for data: JSON's true/false/null are True/False/None.
    const pyData = (v) => (Array.isArray(v) ? `[${v.map(pyData).join(', ')}]`
      : v === true ? 'True' : v === false ? 'False' : v === null ? 'None' : JSON.stringify(v));
    const curl = file
      ? `curl -s ${origin}/v2/models/${name}/infer${auth} -H 'Content-Type: application/octet-stream' --data-binary ${shell(`@${file.name}`)}`
      : `curl -s ${origin}/v2/models/${name}/infer${auth} -H 'Content-Type: application/json' -d ${shell(json)}`;
    const numpyType = { FP32: 'np.float32', FP64: 'np.float64', FP16: 'np.float16', INT64: 'np.int64', INT32: 'np.int32', INT16: 'np.int16', INT8: 'np.int8', UINT8: 'np.uint8', BOOL: 'np.bool_', BYTES: 'np.object_' };
    const python = (module, address, extra) => {
      const lines = [
        'import os', '', 'import numpy as np', `import ${module} as client_lib`, '',
        `client = client_lib.InferenceServerClient(${py(address)}${extra})`,
      ];
      const names = [];
      for (const input of request.inputs) {
        const v = `x_${input.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
        names.push(v);
        const value = file && input.datatype === 'BYTES'
          ? `np.array([open(${py(file.name)}, "rb").read()], dtype=np.object_).reshape(${JSON.stringify(input.shape)})`
          : `np.array(${pyData(input.data)}, dtype=${numpyType[input.datatype] || 'np.float32'}).reshape(${JSON.stringify(input.shape)})`;
        lines.push(`${v} = client_lib.InferInput(${py(input.name)}, ${JSON.stringify(input.shape)}, ${py(input.datatype)})`,
          `${v}.set_data_from_numpy(${value})`);
      }
      lines.push(`result = client.infer(${py(name)}, [${names.join(', ')}]${authPy})`);
      lines.push('print(result.get_response())');
      return lines.join('\n');
    };
    const host = location.host;
    return [
      ['curl', curl],
      ['Python (tritonclient, HTTP)', python('tritonclient.http', host, location.protocol === 'https:' ? ', ssl=True' : '')],
      ['Python (tritonclient, gRPC; port 8001 unless --grpc-port says otherwise)',
        python('tritonclient.grpc', `${location.hostname}:8001`, location.protocol === 'https:' ? ', ssl=True' : '')],
    ];
  }

  async function modelPage(name) {
    const mine = generation;
    main.append(el('p', { class: 'crumbs' }, el('a', { href: '#/', text: 'Models' }), ' / ', el('span', { text: name })));
    const title = el('h1', {}, el('code', { text: name }));
    main.append(title);
    let meta;
    try {
      meta = await api(`/v2/models/${enc(name)}`);
    } catch (e) {
      const index = await postJson('/v2/repository/index', {}).catch(() => []);
      if (mine !== generation) return;
      const entry = index.find((m) => m.name === name);
      if (entry) title.append(' ', stateBadge(entry.state));
      main.append(message(entry && entry.reason ? entry.reason : e.message));
      return;
    }
    if (mine !== generation) return;
    const config = await api(`/v2/models/${enc(name)}/config`).catch(() => null);
    if (mine !== generation) return;
    title.append(' ', stateBadge('READY'));
    main.append(el('p', { class: 'muted', text: `${meta.platform || 'model'} · versions ${meta.versions.join(', ')}` +
      (config && config.max_batch_size ? ` · batches up to ${config.max_batch_size}` : '') }));

    const specTable = (caption, specs) => el('table', { class: 'specs' }, el('caption', { text: caption }),
      el('thead', {}, el('tr', {}, ['Name', 'Datatype', 'Shape'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, specs.map((s) => el('tr', {}, el('td', {}, el('code', { text: s.name })), el('td', { text: s.datatype }),
        el('td', { text: `[${s.shape.join(', ')}]` })))));
    main.append(el('div', { class: 'columns' }, specTable('Inputs', meta.inputs), specTable('Outputs', meta.outputs)));

    // The try-it form.
    const bytesInputs = meta.inputs.filter((s) => s.datatype === 'BYTES');
    const onlyBytes = meta.inputs.length === 1 && bytesInputs.length === 1;
    const batched = Boolean(config && config.max_batch_size > 0);
    const fields = meta.inputs.map((s) => inputField(s, onlyBytes, batched));
    const labelled = new Set(((config && config.output) || []).filter((o) => o.label_filename).map((o) => o.name));
    // With a labelled output, every output is asked for: the labelled ones as their top 5 classes.
    const outputs = labelled.size === 0 ? [] : meta.outputs.map((o) => {
      if (!labelled.has(o.name)) return { name: o.name };
      const classes = o.shape[o.shape.length - 1];
      return { name: o.name, parameters: { classification: classes > 0 ? Math.min(5, classes) : 5 } };
    });
    const send = el('button', { type: 'submit', text: 'Run' });
    const form = el('form', { id: 'try-form', class: 'panel', 'aria-labelledby': 'try-title' },
      el('h2', { id: 'try-title', text: 'Try it' }), fields.map((f) => f.box), el('div', { class: 'buttons' }, send));
    const answer = el('section', { id: 'answer', 'aria-live': 'polite', 'aria-labelledby': 'answer-title' },
      el('h2', { id: 'answer-title', text: 'Answer' }), message('Fill in the form and press Run.', 'muted'));
    const codeBox = el('section', { id: 'snippets', 'aria-labelledby': 'snippets-title' },
      el('h2', { id: 'snippets-title', text: 'The same request from code' }));
    const samples = [];
    const latency = el('section', { id: 'latency', 'aria-labelledby': 'latency-title' },
      el('h2', { id: 'latency-title', text: 'Latency' }));
    const drawLatency = (serverSeries) => {
      latency.replaceChildren(latency.firstChild,
        el('p', { class: 'muted', text: samples.length
          ? `This page's ${samples.length} request(s): last ${samples[samples.length - 1].toFixed(1)} ms, ` +
            `p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms (round trip)`
          : 'No request from this page yet.' }),
        latencyChart(samples, 'round-trip latency of this page\'s requests'));
      if (serverSeries) latency.append(serverSeries);
    };
    drawLatency();
    main.append(el('div', { class: 'columns' }, form, answer), latency, codeBox);

    const showSnippets = (request, file) => {
      codeBox.replaceChildren(codeBox.firstChild, ...snippets(name, request, file).map(([title, code]) =>
        el('details', {}, el('summary', { text: title }), el('pre', {}, el('code', { text: code })))));
    };

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      let request;
      let file = null;
      try {
        file = onlyBytes && fields[0].file ? fields[0].file() : null;
        request = file ? { inputs: [{ name: meta.inputs[0].name, datatype: 'BYTES', shape: concreteShape(meta.inputs[0].shape), data: ['…'] }] }
          : { inputs: fields.map((f) => f.read()) };
        if (outputs.length) request.outputs = outputs;
      } catch (err) {
        answer.replaceChildren(answer.firstChild, message(err.message));
        return;
      }
      send.disabled = true;
      answer.replaceChildren(answer.firstChild, message('Running…', 'muted'));
      const started = performance.now();
      try {
        let result;
        if (file) {
          const { body, headerLength } = binaryRequest(meta.inputs[0], await file.arrayBuffer(), outputs.length ? outputs : undefined);
          result = await api(`/v2/models/${enc(name)}/infer`, {
            method: 'POST', body,
            headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(headerLength) },
          });
        } else {
          result = await postJson(`/v2/models/${enc(name)}/infer`, request);
        }
        samples.push(performance.now() - started);
        if (samples.length > 100) samples.shift();
        const classified = new Set(outputs.map((o) => o.name));
        answer.replaceChildren(answer.firstChild, ...result.outputs.map((o) => renderOutput(o, classified)),
          el('details', { class: 'raw' }, el('summary', { text: 'Raw JSON' }), el('pre', {}, el('code', { text: JSON.stringify(result, null, 2) }))));
      } catch (err) {
        answer.replaceChildren(answer.firstChild, message(err.message));
      } finally {
        if (mine === generation) {  // the page is still shown
          send.disabled = false;
          drawLatency(latency.querySelector('.server-series'));
          showSnippets(request, file);
        }
      }
    });

    // The server's own numbers for this model, every 2 s.
    let last = null;
    const serverMeans = [];
    every(mine, 2000, async () => {
      const stats = await api(`/v2/models/${enc(name)}/stats`).catch(() => null);
      if (!stats || !stats.model_stats || !stats.model_stats.length) return;
      const now = totals(stats.model_stats);
      if (last && now.count > last.count) serverMeans.push((now.ns - last.ns) / (now.count - last.count) / 1e6);
      if (serverMeans.length > 60) serverMeans.shift();
      last = now;
      const series = el('div', { class: 'server-series' },
        el('p', { class: 'muted', text: `Server side: ${now.count} request(s) in all` +
          (serverMeans.length ? `; mean ${serverMeans[serverMeans.length - 1].toFixed(2)} ms over the last 2 s with requests` : '') }),
        latencyChart(serverMeans, 'mean server latency per 2 s'));
      drawLatency(series);
    });

    if (config) {
      main.append(el('details', { class: 'raw' }, el('summary', { text: 'Configuration (GET /v2/models/…/config)' }),
        el('pre', {}, el('code', { text: JSON.stringify(config, null, 2) }))));
    }
  }

  function totals(modelStats) {
    const t = { count: 0, ns: 0, queueNs: 0, inferences: 0, executions: 0 };
    for (const s of modelStats) {
      t.count += s.inference_stats.success.count;
      t.ns += s.inference_stats.success.ns;
      t.queueNs += s.inference_stats.queue.ns;
      t.inferences += s.inference_count;
      t.executions += s.execution_count;
    }
    return t;
  }

  // ---- live statistics --------------------------------------------------------------------------------
  // The Prometheus text of GET /metrics, per model (all versions together): the request-duration
  // histogram's cumulative buckets and the queue depth.
  function parsePrometheus(text) {
    const models = new Map();
    const get = (m) => {
      if (!models.has(m)) models.set(m, { buckets: new Map(), queue: 0 });
      return models.get(m);
    };
    const sample = /^(berth_request_duration_seconds_bucket|berth_queue_depth)\{([^}]*)\} ([0-9.eE+-]+|NaN|\+Inf)$/;
    for (const line of text.split('\n')) {
      const m = sample.exec(line);
      if (!m) continue;
      const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2].replace(/\\(.)/g, '$1')]));
      if (!labels.model) continue;
      const entry = get(labels.model);
      const value = Number(m[3]);
      if (m[1] === 'berth_queue_depth') {
        entry.queue += value;
      } else {
        const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
        entry.buckets.set(le, (entry.buckets.get(le) || 0) + value);
      }
    }
    return models;
  }

  // The q-quantile (seconds) of the requests between two cumulative histograms, interpolated within its
  // bucket as Prometheus's histogram_quantile does; NaN without requests.
  function quantile(q, now, before) {
    const bounds = [...now.keys()].sort((a, b) => a - b);
    const counts = bounds.map((b) => now.get(b) - ((before && before.get(b)) || 0));
    const total = counts[counts.length - 1];
    if (!(total > 0)) return NaN;
    const rank = q * total;
    for (let i = 0; i < bounds.length; i += 1) {
      if (counts[i] >= rank) {
        const lower = i === 0 ? 0 : bounds[i - 1];
        const below = i === 0 ? 0 : counts[i - 1];
        if (bounds[i] === Infinity) return lower;
        const inBucket = counts[i] - below;
        return lower + (bounds[i] - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1);
      }
    }
    return NaN;
  }

  async function metricsPage() {
    const mine = generation;
    const status = el('p', { class: 'error', role: 'status' });
    main.append(el('h1', { text: 'Metrics' }),
      el('p', { class: 'muted', text: 'Every 2 s, from GET /v2/models/stats and GET /metrics (percentiles from the request-duration histogram, interpolated within its buckets as Prometheus does). Prometheus scrapes the same /metrics on the metrics port.' }));
    const body = el('tbody');
    main.append(el('div', { class: 'scroll' }, el('table', { class: 'metrics', id: 'metrics' },
      el('caption', { text: 'Per model, over the last 2 s' }),
      el('thead', {}, el('tr', {}, ['Model', 'Requests/s', 'Mean latency (ms)', 'p50 (ms)', 'p99 (ms)', 'Mean queue (ms)',
        'Queue depth', 'Mean batch', 'Requests/s, last 2 min']
        .map((h) => el('th', { scope: 'col', text: h })))), body)));
    main.append(status);
    const history = new Map();
    let last = null;
    let lastTime = 0;
    let lastHistograms = null;
    every(mine, 2000, async () => {
      const stats = await api('/v2/models/stats');
      status.textContent = '';
      const histograms = await api('/metrics', { text: true }).then(parsePrometheus).catch(() => new Map());
      const now = performance.now();
      const byModel = new Map();
      for (const s of stats.model_stats) {
        if (!byModel.has(s.name)) byModel.set(s.name, []);
        byModel.get(s.name).push(s);
      }
      const current = new Map([...byModel].map(([n, list]) => [n, totals(list)]));
      const rows = [];
      for (const [n, t] of current) {
        const prev = last && last.get(n);
        const dt = (now - lastTime) / 1000;
        const d = prev ? {
          count: t.count - prev.count, ns: t.ns - prev.ns, queueNs: t.queueNs - prev.queueNs,
          inferences: t.inferences - prev.inferences, executions: t.executions - prev.executions,
        } : null;
        const rate = d && dt > 0 ? d.count / dt : 0;
        if (!history.has(n)) history.set(n, []);
        const h = history.get(n);
        if (d) h.push(rate);
        if (h.length > 60) h.shift();
        const fmt = (v, digits) => (Number.isFinite(v) ? v.toFixed(digits) : '—');
        rows.push(el('tr', { 'data-model': n },
          el('th', { scope: 'row' }, el('a', { href: `#/models/${enc(n)}`, text: n })),
          el('td', { class: 'rate', text: d ? fmt(rate, 1) : '—' }),
          el('td', { text: d && d.count ? fmt(d.ns / d.count / 1e6, 2) : '—' }),
          el('td', { class: 'p50', text: d ? fmt(1e3 * quantile(0.5, (histograms.get(n) || {}).buckets || new Map(), lastHistograms && (lastHistograms.get(n) || {}).buckets), 2) : '—' }),
          el('td', { class: 'p99', text: d ? fmt(1e3 * quantile(0.99, (histograms.get(n) || {}).buckets || new Map(), lastHistograms && (lastHistograms.get(n) || {}).buckets), 2) : '—' }),
          el('td', { text: d && d.count ? fmt(d.queueNs / d.count / 1e6, 2) : '—' }),
          el('td', { class: 'queue', text: histograms.has(n) ? String(histograms.get(n).queue) : '—' }),
          el('td', { text: d && d.executions ? fmt(d.inferences / d.executions, 1) : '—' }),
          el('td', {}, latencyChart(h, `requests per second of ${n}`))));
      }
      body.replaceChildren(...rows);
      last = current;
      lastTime = now;
      lastHistograms = histograms;
    }, status);
  }

  // ---- the OpenAPI document ---------------------------------------------------------------------------
  async function openApiPage() {
    const mine = generation;
    main.append(el('h1', { text: 'OpenAPI' }));
    const doc = await api('/v2/openapi.json');
    if (mine !== generation) return;
    const blob = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }));
    main.append(el('p', {}, 'GET ', el('code', { text: '/v2/openapi.json' }), ': OpenAPI 3.1, with a request schema per ready model. ',
      el('a', { href: blob, download: 'berth-openapi.json', text: 'Download' })),
    el('pre', { class: 'raw' }, el('code', { text: JSON.stringify(doc, null, 2) })));
  }

  // ---- start ------------------------------------------------------------------------------------------
  api('/v2').then((m) => { document.getElementById('server-version').textContent = `${m.name} ${m.version}`; }).catch(() => {});
  route();
})();
