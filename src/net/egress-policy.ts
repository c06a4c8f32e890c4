import { promises as dns } from 'node:dns';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces, userInfo } from 'node:os';
import { badRequest } from '../core/errors.js';

/**
 * The egress policy: which network destinations qrun may connect to on a tenant's behalf.
 *
 * Every connect resolves the host name once (`check()`), judges every address it resolved to, and
 * hands back those addresses: the caller dials exactly them (src/net/checked-socket.ts) and never
 * looks the name up again, so a DNS answer that changes between the check and the connect (DNS
 * rebinding) cannot reach an address the policy did not see.
 *
 * Addresses are judged as the address they are, whatever the spelling: `127.1`, `2130706433`,
 * `0x7f.1` (inet_aton forms, which getaddrinfo accepts too), `[::1]`, and IPv4-mapped IPv6
 * (`::ffff:169.254.169.254`), which is turned into its IPv4 address before any IPv4 rule is matched.
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are not translated: they are judged as the IPv6
 * addresses they are. Reaching an IPv4 host through them needs a translator on the path; an operator
 * who has one should deny those prefixes in QRUN_EGRESS_DENY.
 */

export interface EgressTarget {
  /** The host name or IP address as the user gave it. */
  hostname: string;
  port: number;
  /** The database name, for the metadata database rule. */
  database: string;
}

export interface ResolvedAddress {
  /** Canonical text: dotted decimal for IPv4 (also for IPv4-mapped IPv6), compressed lower case for IPv6. */
  address: string;
  family: 4 | 6;
}

/** What a connector may dial: the checked addresses of `hostname`, and only those. */
export interface CheckedDestination {
  /** As the user gave it: TLS verifies the server certificate against this name. */
  hostname: string;
  port: number;
  /** Every address the name resolved to, each one allowed; dial these and nothing else. */
  addresses: readonly ResolvedAddress[];
}

/** Resolves a host name to all of its addresses (dns.lookup with `all: true`, by default). */
export type LookupAll = (hostname: string) => Promise<{ address: string; family: number }[]>;

export interface EgressPolicyOptions {
  /** QRUN_EGRESS_ALLOW entries (CIDRs, IPs, host names). Empty: everything not denied. */
  allow?: readonly string[];
  /** QRUN_EGRESS_DENY entries. Deny beats allow. */
  deny?: readonly string[];
  /** QRUN_DATABASE_URL: when it is postgres://, that database (same server, port and name) is unreachable. */
  metadataDatabaseUrl?: string;
  /** For tests; defaults to dns.lookup(hostname, { all: true, verbatim: true }). */
  lookup?: LookupAll;
  /** For tests; defaults to the addresses of os.networkInterfaces(). */
  localAddresses?: () => readonly string[];
  /** PG* variables that fill the gaps of the metadata URL as pg does; defaults to process.env. */
  env?: Record<string, string | undefined>;
}

/** The name did not resolve (or resolved to nothing usable): not a policy decision. */
export class HostLookupError extends Error {
  constructor(
    readonly hostname: string,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`Could not resolve the host name ${hostname}${code ? ` (${code})` : ''}.`, options);
    this.name = 'HostLookupError';
  }
}

const HOSTNAME_FIELD = 'configuration.hostname';

/**
 * Refuses host names that are not a network host: paths (pg reads a leading `/` as a Unix socket
 * directory), and anything with whitespace, `@` (user info smuggled into a URL-ish string) or
 * control characters. Throws 400 invalid_configuration naming the field.
 */
export function checkHostnameSyntax(hostname: string, field = HOSTNAME_FIELD): void {
  const refuse = (why: string) => badRequest('invalid_configuration', `${field} ${why}`, { field });
  if (hostname === '') throw refuse('must not be empty.');
  if (hostname.startsWith('/')) {
    throw refuse('must be a host name or IP address, not a path: qrun connects over TCP only.');
  }
  // \s covers Unicode spaces too; \p{Cc} is C0, DEL and C1.
  if (/[\s@\p{Cc}]/u.test(hostname)) {
    throw refuse('must be a host name or IP address, without spaces, "@" or control characters.');
  }
}

/**
 * The address an IP literal stands for, in any spelling getaddrinfo would accept as a number
 * (inet_aton: `127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`), IPv6 with or without brackets or
 * a zone id, and IPv4-mapped IPv6 turned into IPv4. undefined when `text` is not an IP literal.
 */
export function parseIpLiteral(text: string): ResolvedAddress | undefined {
  let candidate = text;
  if (candidate.startsWith('[') && candidate.endsWith(']')) candidate = candidate.slice(1, -1);
  const v4 = parseInetAton(candidate);
  if (v4 !== undefined) return { address: formatIpv4(v4), family: 4 };
  // A zone id (`fe80::1%eth0`) names an interface, not another address.
  const unzoned = candidate.split('%')[0] ?? '';
  if (!isIPv6(unzoned)) return undefined;
  // The URL parser writes IPv6 in its canonical form (RFC 5952: lower case, longest zero run
  // compressed, never a dotted tail), so equal addresses compare equal as text.
  const canonical = new URL(`http://[${unzoned}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped) {
    const value = parseInt(mapped[1] ?? '0', 16) * 0x10000 + parseInt(mapped[2] ?? '0', 16);
    return { address: formatIpv4(value), family: 4 };
  }
  return { address: canonical, family: 6 };
}

/** inet_aton: 1 to 4 parts of decimal, octal (leading 0) or hex (0x); the last part fills the rest. */
function parseInetAton(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    if (/^0x[0-9a-f]*$/i.test(part)) values.push(part.length === 2 ? 0 : parseInt(part.slice(2), 16));
    else if (/^0[0-7]*$/.test(part)) values.push(parseInt(part, 8));
    else if (/^[1-9][0-9]*$/.test(part)) values.push(parseInt(part, 10));
    else return undefined;
  }
  const last = values.pop() ?? 0;
  if (values.some((v) => v > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
  return values.reduce((sum, v, i) => sum + v * 2 ** (8 * (3 - i)), last);
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function blockList(entries: readonly [network: string, prefix: number][]): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of entries) {
    const type = isIPv4(network) ? 'ipv4' : 'ipv6';
    list.addSubnet(network, prefix, type);
  }
  return list;
}

/** Never reachable, whatever QRUN_EGRESS_ALLOW says. */
const ALWAYS_DENIED: readonly { why: string; list: BlockList }[] = [
  {
    // Includes 169.254.169.254, the metadata service of AWS, GCP, Azure, Oracle and others.
    why: 'link-local addresses are never reachable',
    list: blockList([
      ['169.254.0.0', 16],
      ['fe80::', 10],
    ]),
  },
  {
    why: 'cloud metadata services are never reachable',
    list: blockList([
      ['fd00:ec2::254', 128], // AWS instance metadata over IPv6 (Nitro)
      ['100.100.100.200', 32], // Alibaba Cloud metadata service
      ['168.63.129.16', 32], // Azure WireServer (platform and host agent endpoint)
    ]),
  },
  {
    // Connecting to 0.0.0.0 reaches this machine on Linux.
    why: 'unspecified addresses (0.0.0.0/8, ::) are never reachable',
    list: blockList([
      ['0.0.0.0', 8],
      ['::', 128],
    ]),
  },
  {
    why: 'multicast addresses are never reachable',
    list: blockList([
      ['224.0.0.0', 4],
      ['ff00::', 8],
    ]),
  },
  { why: 'the broadcast address is never reachable', list: blockList([['255.255.255.255', 32]]) },
];

const LOOPBACK = blockList([
  ['127.0.0.0', 8],
  ['::1', 128],
]);

/** One QRUN_EGRESS_ALLOW / QRUN_EGRESS_DENY entry. */
export type EgressRule =
  { kind: 'name'; name: string } | { kind: 'network'; network: string; prefix: number; family: 4 | 6 };

/**
 * Parses one entry: a CIDR (`10.0.0.0/8`, `fd00::/8`), a single IP (any spelling parseIpLiteral
 * takes), or a host name. Throws an Error whose message is a sentence about `entry`.
 */
export function parseEgressRule(entry: string): EgressRule {
  const text = entry.trim().toLowerCase();
  const slash = text.lastIndexOf('/');
  if (slash >= 0) {
    const ip = parseIpLiteral(text.slice(0, slash));
    const bits = text.slice(slash + 1);
    if (ip !== undefined && /^\d{1,3}$/.test(bits)) {
      let prefix = Number(bits);
      // An IPv4-mapped network (::ffff:10.0.0.0/104) means its IPv4 network.
      const mappedV4 = ip.family === 4 && !isIPv4(text.slice(0, slash)) && text.includes(':');
      if (mappedV4) prefix -= 96;
      if (prefix >= 0 && prefix <= (ip.family === 4 ? 32 : 128)) {
        return { kind: 'network', network: ip.address, prefix, family: ip.family };
      }
    }
    throw new Error(`"${entry}" is not a valid CIDR (like 10.0.0.0/8 or fd00::/8)`);
  }
  const ip = parseIpLiteral(text);
  if (ip !== undefined) {
    return { kind: 'network', network: ip.address, prefix: ip.family === 4 ? 32 : 128, family: ip.family };
  }
  const name = normalizeName(text);
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(name)) {
    throw new Error(`"${entry}" is neither an IP address, a CIDR (like 10.0.0.0/8) nor a host name`);
  }
  return { kind: 'name', name };
}

/** Host names compare case-insensitively and without a final dot (`DB.example.` is `db.example`). */
function normalizeName(hostname: string): string {
  const lower = hostname.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

class RuleSet {
  readonly names = new Set<string>();
  readonly networks = new BlockList();
  hasNetworks = false;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const rule = parseEgressRule(entry);
      if (rule.kind === 'name') {
        this.names.add(rule.name);
      } else {
        this.networks.addSubnet(rule.network, rule.prefix, rule.family === 4 ? 'ipv4' : 'ipv6');
        this.hasNetworks = true;
      }
    }
  }

  get empty(): boolean {
    return this.names.size === 0 && !this.hasNetworks;
  }

  hasAddress(a: ResolvedAddress): boolean {
    return this.hasNetworks && matches(this.networks, a);
  }
}

function matches(list: BlockList, a: ResolvedAddress): boolean {
  return list.check(a.address, a.family === 4 ? 'ipv4' : 'ipv6');
}

interface MetadataDatabase {
  /** A host name or IP, or a Unix socket directory (this machine). */
  host: string;
  port: number;
  database: string;
}

/**
 * Where a postgres:// QRUN_DATABASE_URL points, read the way pg (pg-connection-string) reads it: query
 * parameters `host`, `port` and `user` win, an empty host (`postgres://u@/db?host=/run/postgresql`) is
 * allowed, and pg's defaults (PG* variables, then localhost:5432, database = user) fill the gaps.
 */
export function metadataDatabaseOf(
  url: string | undefined,
  env: Record<string, string | undefined> = process.env,
): MetadataDatabase | undefined {
  if (url === undefined || !/^postgres(ql)?:\/\//i.test(url)) return undefined;
  let parsed: URL;
  let emptyHost = false;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL(url.replace('@/', '@___DUMMY___/'));
    emptyHost = true;
  }
  const params = parsed.searchParams;
  const user = params.get('user') || decodeURIComponent(parsed.username) || env.PGUSER || osUser();
  const hostname = emptyHost ? '' : decodeURIComponent(parsed.hostname);
  return {
    host: params.get('host') || hostname || env.PGHOST || 'localhost',
    port: Number(params.get('port') || parsed.port || env.PGPORT || 5432),
    database: decodeURI(parsed.pathname.slice(1)) || env.PGDATABASE || user,
  };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}

/** The key of "this machine": every loopback address and every address of its own interfaces. */
const THIS_MACHINE = 'this machine';

export class EgressPolicy {
  private readonly allow: RuleSet;
  private readonly deny: RuleSet;
  private readonly metadata: MetadataDatabase | undefined;
  private readonly lookup: LookupAll;
  private readonly localAddresses: () => readonly string[];

  /** Throws an Error naming the bad entry when an allow or deny entry does not parse. */
  constructor(options: EgressPolicyOptions = {}) {
    this.allow = new RuleSet(options.allow ?? []);
    this.deny = new RuleSet(options.deny ?? []);
    this.metadata = metadataDatabaseOf(options.metadataDatabaseUrl, options.env);
    this.lookup = options.lookup ?? ((hostname) => dns.lookup(hostname, { all: true, verbatim: true }));
    this.localAddresses = options.localAddresses ?? machineAddresses;
  }

  /**
   * Resolves `target.hostname` once and checks every address it resolved to; returns them for the
   * caller to dial. Throws AppError 400 `host_not_allowed` (metadata.field configuration.hostname)
   * when the policy refuses the name or ANY of its addresses, 400 `invalid_configuration` for a
   * hostname that is not a host, and HostLookupError when the name does not resolve. Opens no socket.
   */
  async check(target: EgressTarget): Promise<CheckedDestination> {
    const { hostname } = target;
    checkHostnameSyntax(hostname);
    const refuse = (why: string) =>
      badRequest(
        'host_not_allowed',
        `This qrun instance does not allow connections to ${hostname}: ${why}.`,
        {
          field: HOSTNAME_FIELD,
        },
      );
    const byOperator = "the operator's egress policy (QRUN_EGRESS_ALLOW, QRUN_EGRESS_DENY) refuses it";

    const literal = parseIpLiteral(hostname);
    const name = literal === undefined ? normalizeName(hostname) : undefined;
    // A denied name is refused before it is even looked up.
    if (name !== undefined && this.deny.names.has(name)) throw refuse(byOperator);

    const addresses = literal !== undefined ? [literal] : await this.resolve(hostname);
    for (const address of addresses) {
      const always = ALWAYS_DENIED.find((rule) => matches(rule.list, address));
      if (always) throw refuse(always.why);
      if (this.deny.hasAddress(address)) throw refuse(byOperator);
    }
    if (!this.allow.empty) {
      const allowedByName = name !== undefined && this.allow.names.has(name);
      if (!allowedByName && !addresses.every((a) => this.allow.hasAddress(a))) throw refuse(byOperator);
    }
    if (await this.isMetadataDatabase(target, addresses)) {
      throw refuse("it is the database that holds qrun's own metadata");
    }
    return { hostname, port: target.port, addresses };
  }

  /** All addresses of a name, canonical and without duplicates. */
  private async resolve(hostname: string): Promise<ResolvedAddress[]> {
    let found: { address: string; family: number }[];
    try {
      found = await this.lookup(hostname);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      throw new HostLookupError(hostname, typeof code === 'string' ? code : undefined, { cause: err });
    }
    const addresses = new Map<string, ResolvedAddress>();
    for (const { address } of found) {
      const parsed = parseIpLiteral(address);
      if (parsed === undefined) throw new HostLookupError(hostname, undefined);
      addresses.set(parsed.address, parsed);
    }
    if (addresses.size === 0) throw new HostLookupError(hostname, undefined);
    return [...addresses.values()];
  }

  /**
   * Same server (any shared address, every address of this machine counting as one), same port and
   * same database name as QRUN_DATABASE_URL. When the metadata host cannot be resolved the target is
   * refused: the port and database name already match, and the server cannot be told apart.
   */
  private async isMetadataDatabase(target: EgressTarget, addresses: ResolvedAddress[]): Promise<boolean> {
    const meta = this.metadata;
    if (meta === undefined || meta.port !== target.port || meta.database !== target.database) return false;
    const local = new Set(
      this.localAddresses().flatMap((a) => {
        const parsed = parseIpLiteral(a);
        return parsed ? [parsed.address] : [];
      }),
    );
    const server = (a: ResolvedAddress) =>
      matches(LOOPBACK, a) || local.has(a.address) ? THIS_MACHINE : a.address;
    let metaServers: Set<string>;
    if (meta.host.startsWith('/')) {
      metaServers = new Set([THIS_MACHINE]);
    } else {
      const literal = parseIpLiteral(meta.host);
      try {
        metaServers = new Set((literal ? [literal] : await this.resolve(meta.host)).map(server));
      } catch {
        return true;
      }
    }
    return addresses.some((a) => metaServers.has(server(a)));
  }
}

/** Every address of this machine's own interfaces (loopback included). */
function machineAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}
