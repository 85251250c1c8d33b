import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout. Anything shaped like a key or a secret is censored even if a caller passes it by
 * mistake: a private key or a credential must never reach a log.
 */
export function createLogger(level = 'info', destination?: pino.DestinationStream, format: 'json' | 'pretty' = 'json'): Logger {
  if (format === 'pretty' && !destination) {
    // Loaded only when asked for: a terminal's reader, not a log shipper's.
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: object) => pino.DestinationStream;
    destination = pretty({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'SYS:standard', ignore: 'pid,hostname,app' });
  }
  return pino(
    {
      level,
      base: { app: 'certwrangler' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['key', '*.key', 'privateKey', '*.privateKey', 'accountKey', 'secretKey', '*.secretKey', 'password', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
