/**
 * The registry shape every adapter kind shares (DNS provider, orchestrator), as lego keeps its providers: a
 * plain object, name → entry, in the order error messages list the names. An entry reads its own variables
 * in its own folder, builds the adapter from them and declares which of them are credentials, so adding an
 * adapter is one folder and one registry line, and the list of what hooks must never see builds itself.
 */
import type { Env } from './env.js';

export interface AdapterEntry<Options, Adapter, Context> {
  /** Reads and checks the adapter's own variables; a bad one is a ConfigError naming it. */
  fromEnv(env: Env): Options;
  create(options: Options, context: Context): Adapter;
  /** Its variables that hold credentials: withheld from hooks (secrets.ts). */
  readonly secrets: readonly string[];
}

// Method syntax above makes `create` bivariant, so every entry fits here whatever its options.
type Entries = Record<string, AdapterEntry<unknown, unknown, unknown>>;

/** The options `name`'s entry reads. */
export type OptionsOf<E extends Entries, K extends keyof E> = ReturnType<E[K]['fromEnv']>;

export function namesOf<E extends Entries>(entries: E): (keyof E & string)[] {
  return Object.keys(entries);
}

export function secretsOf(entries: Entries): string[] {
  return Object.values(entries).flatMap((e) => e.secrets);
}

// TypeScript cannot follow a name to its own entry's types through the lookup below; the keys guarantee them.
export function fromEnvOf<E extends Entries, K extends keyof E>(entries: E, name: K, env: Env): OptionsOf<E, K> {
  return entries[name]!.fromEnv(env) as OptionsOf<E, K>;
}

export function createOf<E extends Entries, K extends keyof E>(entries: E, name: K, options: OptionsOf<E, K>, context: Parameters<E[K]['create']>[1]): ReturnType<E[K]['create']> {
  return entries[name]!.create(options, context) as ReturnType<E[K]['create']>;
}
