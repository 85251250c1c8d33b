/** The status page: server-rendered HTML from a snapshot, a little CSS, no script; it reloads itself. */
import type { CertRow, StatusSnapshot } from './book.js';

const REFRESH_SECONDS = 30;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** "in 3 days", "5 hours ago": what a person takes in at a glance, next to the exact time. */
export function relative(iso: string, now: Date): string {
  const ms = Date.parse(iso) - now.getTime();
  const abs = Math.abs(ms);
  const [n, unit] = abs >= 2 * 86_400_000 ? [Math.round(abs / 86_400_000), 'days'] : abs >= 2 * 3_600_000 ? [Math.round(abs / 3_600_000), 'hours'] : abs >= 120_000 ? [Math.round(abs / 60_000), 'minutes'] : [Math.round(abs / 1000), 'seconds'];
  return ms >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

function when(iso: string | undefined, now: Date): string {
  if (!iso) return '<span class="muted">—</span>';
  return `<time datetime="${escapeHtml(iso)}" title="${escapeHtml(iso)}">${escapeHtml(iso.slice(0, 16).replace('T', ' '))} UTC</time><br><span class="muted">${relative(iso, now)}</span>`;
}

const HEALTH_LABEL: Record<CertRow['health'], string> = { ok: 'OK', expired: 'EXPIRED', expiring: 'EXPIRING', failing: 'FAILING', pending: 'PENDING' };

function row(r: CertRow, now: Date): string {
  const e = escapeHtml;
  const pending = r.pendingReloads?.length ? `<br><span class="err">pushed, balancer reload pending: ${r.pendingReloads.map(e).join(', ')}</span>` : '';
  const last = `${r.lastAction ? `${e(r.lastAction.action)}: <b>${e(r.lastAction.outcome)}</b> <span class="muted">${relative(r.lastAction.at, now)}</span><br>` : ''}<span class="why">decided: ${e(r.decision.message)}</span>${pending}`;
  const problem = r.lastError ? `<span class="err">${e(r.lastError)}</span>${r.nextAttempt ? `<br>next attempt ${when(r.nextAttempt, now)}` : ''}` : '<span class="muted">—</span>';
  return `<tr class="cert ${r.health}" data-name="${e(r.name)}" data-health="${r.health}">
<td><span class="badge ${r.health}">${HEALTH_LABEL[r.health]}</span></td>
<td><b>${e(r.name)}</b>${r.names.length > 1 ? `<br><span class="muted">${r.names.slice(1).map(e).join(', ')}</span>` : ''}<br><span class="muted">from ${r.sources.map(e).join(', ')}</span></td>
<td>${r.foreign ? 'foreign<br><span class="muted">not managed, never written</span>' : e(r.kind ?? '—')}${r.profile ? `<br><span class="muted">profile ${e(r.profile)}</span>` : ''}${r.servedElsewhere ? '<br><span class="muted">served from elsewhere</span>' : ''}</td>
<td class="issuer">${e(r.issuer ?? '—')}${r.ca ? `<br><span class="muted">from ${e(r.ca)}${r.caWhy ? ` (${e(r.caWhy)})` : ''}</span>` : ''}${r.served === false ? '<br><span class="err">not served by every balancer (VERIFY)</span>' : r.served === true ? '<br><span class="muted">served by every balancer (VERIFY)</span>' : ''}</td>
<td>${when(r.notAfter, now)}</td>
<td>${when(r.renewAt, now)}${r.renewRule ? `<br><span class="why">${e(r.renewRule)}</span>` : ''}${r.renewalWindow?.early ? `<br><span class="err">the CA asks for early renewal${r.renewalWindow.explanationURL ? `: ${e(r.renewalWindow.explanationURL)}` : ''}</span>` : ''}</td>
<td>${last}</td>
<td>${problem}</td>
</tr>`;
}

export function renderPage(s: StatusSnapshot, now: Date = new Date(s.now)): string {
  const e = escapeHtml;
  const banner = s.alerts.length
    ? `<div class="banner" role="alert"><b>${s.alerts.length} ${s.alerts.length === 1 ? 'thing needs' : 'things need'} attention</b><ul>${s.alerts.map((a) => `<li>${e(a)}</li>`).join('')}</ul></div>`
    : s.ready
      ? '<div class="allgood">All certificates are in place and none is near expiry.</div>'
      : '<div class="allgood">The first pass has not finished yet.</div>';
  const pass = s.lastPass
    ? `last pass ${relative(s.lastPass.finishedAt, now)} (${s.lastPass.ok ? 'all fine' : 'some need attention'}, ${s.lastPass.orders} orders)`
    : 'no pass finished yet';
  const events = s.events.length
    ? `<h2>Recent events</h2><ul class="events">${s.events
        .slice(0, 15)
        .map((ev) => `<li class="${ev.type}"><span class="muted">${relative(ev.at, now)}</span> <b>${e(ev.name)}</b> ${e(ev.type)}${ev.error ? `: ${e(ev.error)}` : ''}</li>`)
        .join('')}</ul>`
    : '';
  const budgets = (s.lastPass?.budgets ?? []).filter((b) => b.rows.length > 0 || b.error);
  const limits = budgets.length
    ? `<h2>Rate limits</h2><p class="muted">New certificates from labels or the API may use only part of each limit (NEW_ORDER_BUDGET); the rest is held back for renewals and DOMAINS.</p>${budgets
        .map(
          (b) =>
            `<h3 class="muted">${e(b.directory)}</h3>${b.error ? `<p class="err">${e(b.error)}</p>` : ''}<table class="budgets"><thead><tr><th>Limit</th><th>For</th><th>Used</th><th>New certificates may use</th><th>Held back</th><th>Refills</th></tr></thead><tbody>${b.rows
              .map((r) => `<tr><td>${e(r.limit)}</td><td>${e(r.scope)}</td><td>${r.used} of ${r.max}</td><td>${r.newMax}</td><td>${r.heldBack}</td><td>${when(r.refillsAt, now)}</td></tr>`)
              .join('')}</tbody></table>`,
        )
        .join('')}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${s.alerts.length ? `(${s.alerts.length}) ` : ''}certwrangler</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin-top:1.5em}
.meta,.muted{color:#5c6675;font-size:.92em}
.banner{background:#fdecea;border:1px solid #e0a8a3;border-left:6px solid #c0392b;padding:.6em 1em;margin:1em 0;border-radius:4px}
.banner ul{margin:.3em 0 0;padding-left:1.2em}
.allgood{background:#eaf7ee;border:1px solid #a9d8b6;border-left:6px solid #2e8b57;padding:.6em 1em;margin:1em 0;border-radius:4px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6ea;padding:.45em .6em;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
tr.expired td,tr.failing td{background:#fff6f5}tr.expiring td{background:#fffaf0}
.badge{font-size:.8em;font-weight:700;padding:.15em .5em;border-radius:3px;color:#fff;background:#2e8b57}
.badge.expired,.badge.failing{background:#c0392b}.badge.expiring{background:#d68910}.badge.pending{background:#7f8c8d}
.err{color:#a93226}.why{color:#5c6675;font-size:.9em}.issuer{min-width:10em;max-width:18em;overflow-wrap:anywhere}td:nth-child(2){min-width:12em}
ul.events{padding-left:1.2em}ul.events li.failed b{color:#a93226}
</style></head>
<body>
<h1>certwrangler</h1>
<div class="meta">${s.certificates.length} certificates · ${pass}${s.nextPassAt ? ` · next pass ${relative(s.nextPassAt, now)}` : ''} · version ${e(s.version)} · <a href="api/status">JSON</a> · <a href="metrics">metrics</a></div>
${banner}
<table>
<thead><tr><th>State</th><th>Certificate</th><th>Kind</th><th>Issuer</th><th>Expires</th><th>Renews</th><th>Last action, and why</th><th>Last error</th></tr></thead>
<tbody>
${s.certificates.map((r) => row(r, now)).join('\n') || '<tr><td colspan="8" class="muted">No certificates wanted: set DOMAINS, label a service, or PUT /api/certificates/&lt;name&gt;.</td></tr>'}
</tbody></table>
${limits}
${events}
</body></html>`;
}
