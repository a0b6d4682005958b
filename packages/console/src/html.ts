/**
 * The console page's HTML and CSS (inline: one request for the page, one for its script). Every
 * element the script fills has an id; messages about a field sit beside it (`*-error`).
 */
export const pageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cloister console</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 1em; color: #222; }
  h1 { font-size: 1.4em; margin: 0 0 .5em; }
  h2 { font-size: 1.1em; margin: 0 0 .5em; }
  section { border: 1px solid #ccc; border-radius: 6px; padding: .8em 1em; margin: .8em 0; }
  code, .mono { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
  .banner { border: 3px solid #c00; background: #fee; color: #900; font-weight: bold; padding: .6em 1em; border-radius: 6px; margin: .8em 0; }
  .alarm { border: 3px solid #c00; background: #c00; color: #fff; font-weight: bold; padding: .8em 1em; border-radius: 6px; margin: .8em 0; }
  .verdict { padding: .5em .8em; border-radius: 6px; font-weight: bold; overflow-wrap: anywhere; }
  .ok { border: 2px solid #080; background: #efe; color: #060; }
  .bad { border: 2px solid #c00; background: #fee; color: #900; }
  .pending { border: 2px solid #888; background: #f4f4f4; color: #444; }
  .error { color: #b00; margin-left: .5em; }
  .note { color: #666; font-size: 12px; }
  [hidden] { display: none !important; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .2em .4em; border-bottom: 1px solid #eee; vertical-align: top; }
  input[type=text], textarea, select { font: inherit; }
  input[type=text] { width: 26em; max-width: 100%; box-sizing: border-box; }
  #evidence-table td:first-child { word-break: normal; font-family: inherit; font-size: inherit; white-space: nowrap; }
  #apps-table td:first-child { word-break: normal; }
  #connection-state, .error { overflow-wrap: anywhere; }
  textarea { width: 100%; height: 4em; font-family: ui-monospace, monospace; }
  .row { margin: .4em 0; }
  footer { color: #555; font-size: 12px; border-top: 1px solid #ccc; margin-top: 1.5em; padding-top: .6em; }
</style>
</head>
<body>
<h1>Cloister console</h1>
<div id="alarm" class="alarm" role="alert" hidden></div>
<div id="service-accept-row" class="row" hidden><button id="service-accept"></button>
  <span class="note">Only if the operator confirmed this exact service identity (a new service
  means new keys, data and history): the pin for this node is replaced and the connection made.</span></div>
<div id="sim-banner" class="banner" hidden>simulation — not secure: this node runs on a platform
  with no hardware protection; its operator can read and change everything. Use it to try Cloister,
  never for real data.</div>

<section id="constraint-section">
  <h2>Constraint</h2>
  <div class="row">In use: <code id="constraint-value">none</code>
    <span id="constraint-source" class="note"></span></div>
  <div id="constraint-missing" class="bad verdict" hidden>No constraint was given: nothing is
    accepted until you give one (what code you accept, e.g. <code>C:&lt;measurement&gt; SEC:INSECURE</code>;
    <code>cloister measure</code> prints the measurement).</div>
  <div class="row"><label for="constraint-input">New constraint</label>
    <input type="text" id="constraint-input" placeholder="C:<measurement> SEC:INSECURE APP:name=<code id>">
    <button id="constraint-apply">Use this constraint</button><span id="constraint-error" class="error" aria-live="polite"></span></div>
</section>

<section id="evidence-section">
  <h2>Node evidence <span class="note">(checked in this page, with a fresh nonce)</span></h2>
  <div class="row">Node: <code id="node-url"></code></div>
  <div id="verdict" class="verdict pending" role="status" aria-live="polite">not checked yet</div>
  <table id="evidence-table"></table>
  <div class="row"><button id="evidence-check">Check again</button></div>
</section>

<section id="status-section">
  <h2>Status <span class="note">(the node's claim; receipts are the proof)</span></h2>
  <table>
    <tr><th>commit index</th><td id="status-index" class="mono"></td></tr>
    <tr><th>last signed index</th><td id="status-signed" class="mono"></td></tr>
    <tr><th>state hash</th><td id="status-state" class="mono"></td></tr>
    <tr><th>service identity</th><td id="status-service" class="mono"></td></tr>
  </table>
  <div class="row"><button id="status-refresh">Refresh</button> <span class="note">(also every 3 s)</span>
    <span id="status-error" class="error" aria-live="polite"></span></div>
</section>

<section id="apps-section">
  <h2>Apps <span class="note">(public code history, as the node reports it)</span></h2>
  <table id="apps-table"><tr><td class="note">loading…</td></tr></table>
  <span id="apps-error" class="error" aria-live="polite"></span>
</section>

<section id="identity-section">
  <h2>Identity</h2>
  <div class="row"><label for="identity-name">Name</label> <input type="text" id="identity-name" value="default">
    <button id="identity-create">Create</button> <button id="identity-load">Load</button>
    <span id="identity-error" class="error" aria-live="polite"></span></div>
  <div class="row">Public key: <code id="identity-key">none</code></div>
  <div class="note">The private key is generated non-extractable and kept in this browser's IndexedDB
    for this console's address (<code>127.0.0.1</code> and its port): this page's script can sign
    with it, nobody can read it out. Identities belong to the address: a console on another port
    starts without them, and any other program that serves pages on this port could use them, so
    keep the port for the console. The services pinned for each node and the last signed roots
    are kept by <code>cloister console</code> in your Cloister home, with the CLI's.</div>
</section>

<section id="connection-section">
  <h2>Secure connection</h2>
  <div class="row"><button id="connect">Connect</button> <span id="connection-state" class="note" role="status" aria-live="polite">not connected</span>
    <span id="connect-error" class="error" aria-live="polite"></span></div>
</section>

<section id="call-section">
  <h2>Call an app</h2>
  <div class="row"><label for="call-app">App</label> <input type="text" id="call-app" value="token"><span id="call-app-error" class="error" aria-live="polite"></span></div>
  <div class="row"><label for="call-method">Method</label> <input type="text" id="call-method" value="whoami"><span id="call-method-error" class="error" aria-live="polite"></span></div>
  <div class="row"><label for="call-kind">Kind</label> <select id="call-kind"><option value="query">query</option><option value="transaction">transaction</option></select></div>
  <div class="row"><label for="call-args">Arguments (JSON)</label> <span id="call-args-error" class="error" aria-live="polite"></span><textarea id="call-args">{}</textarea></div>
  <div class="row"><button id="call-run">Run</button><span id="call-error" class="error" aria-live="polite"></span></div>
  <div class="row" aria-live="polite">Result: <code id="call-result"></code></div>
  <div class="row">App code: <code id="call-code"></code></div>
  <div class="row">Notifications: <code id="call-notifications"></code></div>
  <div id="receipt-box" hidden>
    <div class="row">Transaction <code id="receipt-txid"></code>
      <button id="receipt-download" disabled>Download receipt (CBOR)</button>
      <button id="receipt-verify" disabled>Verify receipt in this page</button></div>
    <div id="receipt-verdict" class="verdict pending" role="status" aria-live="polite" hidden></div>
  </div>
</section>

<section id="receipt-file-section">
  <h2>Check a receipt file <span class="note">(one from <code>cloister receipt get</code>, or one someone gave you)</span></h2>
  <div class="row"><label for="receipt-file">Receipt (CBOR)</label> <input type="file" id="receipt-file" accept=".cbor,application/cbor"></div>
  <div id="receipt-file-verdict" class="verdict pending" role="status" aria-live="polite" hidden></div>
</section>

<section id="mine-section">
  <h2>Your transactions <span class="note">(kept unencrypted in this browser's storage for this
    console address, listed while their identity is loaded)</span></h2>
  <table id="mine-table"></table>
</section>

<footer id="footer">This page is served by your own Cloister installation (<code>cloister console</code>), not
  by the node: a page served by the host would let the adversary ship the verifier. It runs on
  localhost, a secure context, so WebCrypto is available and the evidence and receipts are checked
  here, in your browser. Only public metadata and your own transactions are shown.</footer>
<script type="module" src="/console.js"></script>
</body>
</html>
`;
