/**
 * The conventions Docker users already label their services with, read in place of HOSTS_LABEL when
 * DOCKER_READERS names them. Each gives values in the hosts-label grammar ("a,b"), one certificate per router
 * or per container; the label policy and ownership then treat them as they treat any label.
 */

/** `traefik.http.routers.<r>.rule` (v2, v3) and `traefik.frontend.rule` / `traefik.<s>.frontend.rule` (v1). */
const TRAEFIK_RULE = /^traefik\.(?:http\.routers\.[^.]+\.rule|(?:[^.]+\.)?frontend\.rule)$/;

/**
 * The names a Traefik rule matches by host: every `Host(...)` of a v2/v3 rule (`Host(\`a\`) || Host(\`b\`)`,
 * `Host(\`a\`, \`b\`)` in v2, with `&&`, paths and the rest ignored), or v1's `Host:a,b` (up to its `;`).
 * `HostRegexp` and `HostSNI` name no host a certificate can be ordered for.
 */
export function traefikRuleHosts(rule: string): string[] {
  const v1 = /(?:^|;)\s*Host\s*:([^;]*)/i.exec(rule);
  if (v1 && !rule.includes('(')) return v1[1]!.split(',').map((h) => h.trim()).filter((h) => h !== '');
  const out: string[] = [];
  for (const m of rule.matchAll(/\bHost\s*\(([^)]*)\)/g)) {
    for (const arg of m[1]!.split(',')) {
      const h = arg.trim().replace(/^[`"']|[`"']$/g, '').trim();
      if (h !== '' && !out.includes(h)) out.push(h);
    }
  }
  return out;
}

/** Each Traefik router of these labels with the hosts its rule matches; none when `traefik.enable=false`. */
export function traefikRequests(labels: Record<string, string>): { key: string; hosts: string[] }[] {
  if (labels['traefik.enable']?.trim().toLowerCase() === 'false') return [];
  return Object.keys(labels)
    .filter((k) => TRAEFIK_RULE.test(k))
    .sort()
    .map((key) => ({ key, hosts: traefikRuleHosts(labels[key]!) }))
    .filter((r) => r.hosts.length > 0);
}

/**
 * nginx-proxy and acme-companion: LETSENCRYPT_HOST names the certificate; without it, VIRTUAL_HOST (what
 * nginx-proxy serves). Regular-expression hosts (`~^…`) name no host a certificate can be ordered for.
 */
export function nginxProxyRequest(env: string[]): { variable: string; hosts: string[] } | undefined {
  const vars = new Map(env.map((e) => [e.slice(0, Math.max(0, e.indexOf('='))), e.slice(e.indexOf('=') + 1)] as const));
  for (const variable of ['LETSENCRYPT_HOST', 'VIRTUAL_HOST']) {
    const v = vars.get(variable);
    if (v === undefined || v.trim() === '') continue;
    const hosts = v.split(',').map((h) => h.trim()).filter((h) => h !== '' && !h.startsWith('~'));
    if (hosts.length > 0) return { variable, hosts };
  }
  return undefined;
}
