/**
 * Issue 23: the label policy's limits at their edges (exactly the cap is taken, one more is refused) and
 * the stack rule by name or by id, as an operator reads the refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDomainList, type LabelService, type WantedCert } from '../../src/domains.js';
import { checkLabels, describeService, refusal, type LabelPolicy } from '../../src/label-policy.js';

const opts = { dnsProvider: true, onePerName: false, allowedSuffixes: [] };
const svc = (name: string, extra: Partial<LabelService> = {}): LabelService => ({ id: `id-${name}`, name, stackId: '1st1', stack: 'default', ...extra });
function label(service: LabelService | undefined, v: string, extra: Partial<WantedCert> = {}): WantedCert[] {
  return parseDomainList(v, `label hosts on service ${service?.name ?? '?'}`, opts).certs.map((c) => ({ ...c, ...(service ? { service } : {}), ...extra }));
}
const policy = (p: Partial<LabelPolicy> = {}): LabelPolicy => ({ allowedDomains: [], allowedDomainsFrom: 'ALLOWED_DOMAINS', allowDns01: false, maxCerts: 3, maxNames: 4, maxNewPerDay: 5, stacks: undefined, ...p });
const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}.example.com`).join(',');

test('label caps: exactly LABEL_MAX_NAMES names are taken, one more is refused', () => {
  const r = checkLabels([...label(svc('four'), names(4, 'f')), ...label(svc('five'), names(5, 'v'))], policy());
  assert.deepEqual(r.certs.map((c) => c.names.length), [4]);
  assert.deepEqual(r.refused.map((x) => x.error), ['5 names in one certificate; a label may ask for at most 4 (LABEL_MAX_NAMES)']);
  assert.equal(r.refused[0]!.service, 'five (id-five)');
  assert.equal(r.refused[0]!.spec, names(5, 'v'));
});

test('label caps: exactly LABEL_MAX_CERTS certificates per service are taken, in label order; another service has its own count; a refused one does not count', () => {
  const web = svc('web');
  const certs = [
    ...label(web, 'outside.example.org'),
    ...label(web, 'a.example.com;b.example.com;c.example.com;d.example.com'),
    ...label(svc('api'), 'x.example.com;y.example.com;z.example.com'),
  ];
  const r = checkLabels(certs, policy({ allowedDomains: ['example.com'] }));
  assert.deepEqual(r.certs.map((c) => c.name), ['a.example.com', 'b.example.com', 'c.example.com', 'x.example.com', 'y.example.com', 'z.example.com']);
  assert.deepEqual(r.refused.map((x) => `${x.spec}: ${x.error}`), [
    'outside.example.org: "outside.example.org" is outside ALLOWED_DOMAINS (example.com), the suffixes labels may use',
    'd.example.com: service web (id-web) asks for more than 3 certificates (LABEL_MAX_CERTS); the first 3 in label order are taken',
  ]);
});

test('label caps: a certificate without a service is counted by its source', () => {
  const r = checkLabels(label(undefined, 'a.example.com;b.example.com;c.example.com;d.example.com'), policy());
  assert.equal(r.certs.length, 3);
  assert.match(r.refused[0]!.error, /^service label hosts on service \? asks for more than 3 certificates/);
  assert.equal(r.refused[0]!.service, undefined, 'no service to name');
});

test('label policy: LABEL_STACKS matches a stack by name or by id; a service of another or no stack is refused naming both', () => {
  const byName = svc('n', { stackId: '1st7', stack: 'tenants' });
  const byId = svc('i', { stackId: '1st8', stack: 'other' });
  const noStack: LabelService = { id: 'id-x', name: 'x' };
  const idOnly: LabelService = { id: 'id-y', name: 'y', stackId: '1st9' };
  const r = checkLabels([...label(byName, 'n.example.com'), ...label(byId, 'i.example.com'), ...label(noStack, 'x.example.com'), ...label(idOnly, 'y.example.com'), ...label(undefined, 'u.example.com')], policy({ stacks: ['tenants', '1st8'] }));
  assert.deepEqual(r.certs.map((c) => c.name), ['n.example.com', 'i.example.com']);
  assert.deepEqual(r.refused.map((x) => x.error), [
    'service x (id-x) is in stack (unknown); LABEL_STACKS lets only services of tenants, 1st8 use the label',
    'service y (id-y) is in stack 1st9; LABEL_STACKS lets only services of tenants, 1st8 use the label',
    'service ? is in stack (unknown); LABEL_STACKS lets only services of tenants, 1st8 use the label',
  ]);
});

test('label policy: with LABELS_ALLOW_DNS01 a wildcard and dns-01 are taken as asked; without, a name with no allowed suffix list is any name', () => {
  const open = checkLabels([...label(svc('w'), '*.w.example.com'), ...label(svc('d'), 'd.example.com', { challenge: 'dns-01' })], policy({ allowDns01: true }));
  assert.deepEqual(open.refused, []);
  assert.deepEqual(open.certs.map((c) => [c.names[0], c.challenge]), [['*.w.example.com', undefined], ['d.example.com', 'dns-01']]);
  const two = checkLabels(label(svc('o'), 'x.example.org'), policy({ allowedDomains: ['example.com', 'example.net'], allowedDomainsFrom: 'LABEL_ALLOWED_DOMAINS' }));
  assert.equal(two.refused[0]!.error, '"x.example.org" is outside LABEL_ALLOWED_DOMAINS (example.com, example.net), the suffixes labels may use');
  const any = checkLabels(label(svc('a'), 'anything.example.net'), policy());
  assert.deepEqual(any.certs.map((c) => [c.name, c.challenge]), [['anything.example.net', 'http-01']]);
});

test('label policy: a refusal names the service and the label\'s source; without a source it is "label"', () => {
  assert.equal(describeService(svc('web')), 'web (id-web)');
  const [cert] = label(svc('web'), 'a.example.com,b.example.com');
  assert.deepEqual(refusal(cert!, 'why'), { spec: 'a.example.com,b.example.com', source: 'label hosts on service web', error: 'why', service: 'web (id-web)' });
  assert.deepEqual(refusal({ ...cert!, sources: [], service: undefined }, 'why'), { spec: 'a.example.com,b.example.com', source: 'label', error: 'why' });
});
