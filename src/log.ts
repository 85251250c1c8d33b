import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout. Anything shaped like a key or a secret is censored even if a caller passes it by
 * mistake: a private key or a credential must never reach a log.
 */
export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
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
