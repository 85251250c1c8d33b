/**
 * `net.isIP` without compiling Node's IPv6 pattern for text that cannot be an IPv6 address. Node 20 compiles that
 * pattern on first use: 35–70 ms of CPU on this machine, the largest single cost of reading the configuration
 * (STATUS_ADDR "127.0.0.1:9180", every name of DOMAINS) for a process whose whole start is about 0.3 s. Only text
 * that could be an IPv6 address (two colons or more; hex digits, colons and dots, then an optional %zone) is
 * given to Node's check, so every answer is Node's own.
 */
import { isIPv4, isIPv6 } from 'node:net';

const MAYBE_V6 = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*:[0-9a-fA-F:.]*(?:%.*)?$/;

export function isIP(text: string): 0 | 4 | 6 {
  if (isIPv4(text)) return 4;
  return MAYBE_V6.test(text) && isIPv6(text) ? 6 : 0;
}
