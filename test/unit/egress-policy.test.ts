import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { AppError } from '../../src/core/errors.js';
import { checkedSocket, unreachableMessage } from '../../src/net/checked-socket.js';
import {
  EgressPolicy,
  HostLookupError,
  checkHostnameSyntax,
  metadataDatabaseOf,
  parseEgressRule,
  parseIpLiteral,
  type EgressPolicyOptions,
  type EgressTarget,
} from '../../src/net/egress-policy.js';

/** A resolver from a fixed table, counting its calls; unknown names fail like getaddrinfo. */
function table(entries: Record<string, string[]>) {
  const calls: string[] = [];
  const lookup = async (hostname: string) => {
    calls.push(hostname);
    // Like a resolver, a final dot only says the name is complete.
    const found = entries[hostname.toLowerCase().replace(/\.$/, '')];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { lookup, calls };
}

const NAMES = {
  localhost: ['127.0.0.1', '::1'],
  'db.example': ['10.0.0.5'],
  'public.example': ['203.0.113.7'],
  // One good and one bad address: the whole name is refused.
  'mixed.example': ['203.0.113.7', '169.254.169.254'],
  'mapped.example': ['::ffff:169.254.169.254'],
  'two.example': ['203.0.113.7', '10.0.0.9'],
  'meta.example': ['10.1.1.1'],
};
/** This machine's interfaces, as os.networkInterfaces() would list them. */
const LOCAL = ['127.0.0.1', '::1', '192.0.2.2', 'fd00::2'];

function policy(options: EgressPolicyOptions = {}) {
  const resolver = table(NAMES);
  const p = new EgressPolicy({ lookup: resolver.lookup, localAddresses: () => LOCAL, env: {}, ...options });
  return Object.assign(p, { lookups: resolver.calls });
}

const target = (hostname: string, port = 5432, database = 'app'): EgressTarget => ({
  hostname,
  port,
  database,
});

async function refusal(promise: Promise<unknown>, key = 'host_not_allowed'): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).key).toBe(key);
    expect((err as AppError).status).toBe(400);
    expect((err as AppError).metadata).toEqual({ field: 'configuration.hostname' });
    return err as AppError;
  }
  throw new Error('the destination was allowed');
}

describe('parseIpLiteral: every spelling is the address it is', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1', 4],
    ['127.1', '127.0.0.1', 4],
    ['2130706433', '127.0.0.1', 4],
    ['0x7f.1', '127.0.0.1', 4],
    ['0177.0.0.1', '127.0.0.1', 4],
    ['0x7f000001', '127.0.0.1', 4],
    ['2852039166', '169.254.169.254', 4],
    ['0', '0.0.0.0', 4],
    ['[::1]', '::1', 6],
    ['0:0:0:0:0:0:0:1', '::1', 6],
    ['::ffff:127.0.0.1', '127.0.0.1', 4],
    ['::FFFF:7f00:1', '127.0.0.1', 4],
    ['[::ffff:169.254.169.254]', '169.254.169.254', 4],
    ['FE80::1%eth0', 'fe80::1', 6],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 6],
  ])('%s is %s', (text, address, family) => {
    expect(parseIpLiteral(text)).toEqual({ address, family });
  });

  it.each(['db.example', 'localhost', '256.0.0.1', '1.2.3.4.5', '08.0.0.1', '', '127.0.0.1 ', '[db]'])(
    '%j is no IP literal',
    (text) => {
      expect(parseIpLiteral(text)).toBeUndefined();
    },
  );
});

describe('the default policy', () => {
  it('allows loopback (the embedded default queries local databases), private and public addresses', async () => {
    const p = policy();
    for (const host of [
      '127.0.0.1',
      '::1',
      'localhost',
      '10.0.0.5',
      'db.example',
      '203.0.113.7',
      'fd12::1',
    ]) {
      await expect(p.check(target(host)), host).resolves.toMatchObject({ hostname: host, port: 5432 });
    }
  });

  it('returns every checked address, canonical and once, and looks the name up exactly once', async () => {
    const p = policy();
    const destination = await p.check(target('localhost', 6543));
    expect(destination).toEqual({
      hostname: 'localhost',
      port: 6543,
      addresses: [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ],
    });
    expect(p.lookups).toEqual(['localhost']);
    // A literal is never looked up.
    await p.check(target('2130706433'));
    expect(p.lookups).toEqual(['localhost']);
    expect((await p.check(target('2130706433'))).addresses).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('says when a name does not resolve, apart from policy refusals', async () => {
    await expect(policy().check(target('nowhere.example'))).rejects.toBeInstanceOf(HostLookupError);
    await expect(policy().check(target('nowhere.example'))).rejects.toThrow(/nowhere\.example.*ENOTFOUND/);
  });
});

describe('always denied, whatever the settings', () => {
  // Even an allow list of everything cannot open these.
  const allowAll = { allow: ['0.0.0.0/0', '::/0', 'mixed.example', 'mapped.example'] };

  it.each([
    ['169.254.0.1', /link-local/],
    ['169.254.169.254', /link-local/],
    ['169.254.255.255', /link-local/],
    ['fe80::1', /link-local/],
    ['[fe80::1]', /link-local/],
    ['febf:ffff::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['fd00:ec2::254', /metadata/],
    ['100.100.100.200', /metadata/],
    ['168.63.129.16', /metadata/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['0', /unspecified/],
    ['::', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.255', /multicast/],
    ['ff02::1', /multicast/],
    ['ff0e::1', /multicast/],
    ['255.255.255.255', /broadcast/],
    // Other spellings of the same addresses.
    ['::ffff:169.254.169.254', /link-local/],
    ['::ffff:a9fe:a9fe', /link-local/],
    ['[::ffff:169.254.169.254]', /link-local/],
    ['2852039166', /link-local/],
    ['0xa9.0xfe.0xa9.0xfe', /link-local/],
    ['0251.0376.0251.0376', /link-local/],
    ['::ffff:0.0.0.0', /unspecified/],
    ['::ffff:224.0.0.1', /multicast/],
    // Names that resolve there: a bad address anywhere refuses the whole name.
    ['mixed.example', /link-local/],
    ['mapped.example', /link-local/],
  ])('%s', async (hostname, why) => {
    const err = await refusal(policy(allowAll).check(target(hostname)));
    expect(err.message).toMatch(
      new RegExp(`^This qrun instance does not allow connections to ${escape(hostname)}: `),
    );
    expect(err.message).toMatch(why);
  });

  it.each([
    '169.253.255.255',
    '169.255.0.0',
    'fec0::1',
    '100.100.100.201',
    '168.63.129.17',
    '1.0.0.0',
    '223.255.255.255',
    '255.255.255.254',
    'fd00:ec2::253',
  ])('but not the neighbour %s', async (hostname) => {
    await expect(policy().check(target(hostname))).resolves.toBeDefined();
  });
});

describe('QRUN_EGRESS_ALLOW and QRUN_EGRESS_DENY', () => {
  it('a denied CIDR refuses every address in it, whatever the spelling, and names that resolve there', async () => {
    const p = policy({ deny: ['127.0.0.0/8', '10.0.0.0/8'] });
    for (const host of [
      '127.0.0.1',
      '127.1',
      '2130706433',
      '0x7f.1',
      '::ffff:127.0.0.1',
      '[::ffff:127.0.0.2]',
      'localhost',
      '10.1.2.3',
      'db.example',
    ]) {
      const err = await refusal(p.check(target(host)));
      expect(err.message).toContain(`connections to ${host}: `);
      expect(err.message).toContain('egress policy');
    }
    // ::1 is loopback too, but not in 127.0.0.0/8; localhost is refused for its 127.0.0.1.
    await expect(p.check(target('::1'))).resolves.toBeDefined();
    await expect(p.check(target('11.0.0.1'))).resolves.toBeDefined();
  });

  it('a denied single IP and an IPv6 CIDR', async () => {
    const p = policy({ deny: ['203.0.113.7', 'fd00::/8'] });
    await refusal(p.check(target('203.0.113.7')));
    await refusal(p.check(target('public.example')));
    await refusal(p.check(target('fd12:3456::1')));
    await expect(p.check(target('203.0.113.8'))).resolves.toBeDefined();
    await expect(p.check(target('2001:db8::1'))).resolves.toBeDefined();
  });

  it('a denied host name matches case-insensitively, with or without the final dot, and is never looked up', async () => {
    const p = policy({ deny: ['DB.example'] });
    for (const host of ['db.example', 'DB.EXAMPLE', 'db.example.']) await refusal(p.check(target(host)));
    expect(p.lookups).toEqual([]);
    // A name rule is about the name: the address itself is another destination.
    await expect(p.check(target('10.0.0.5'))).resolves.toBeDefined();
  });

  it('an allow list admits only what it lists: names by name, addresses by CIDR or IP', async () => {
    const p = policy({ allow: ['10.0.0.0/8', 'public.example', 'fd00::/8', '198.51.100.1'] });
    for (const host of [
      '10.9.8.7',
      'db.example',
      'public.example',
      'PUBLIC.example.',
      'fd12::1',
      '198.51.100.1',
    ]) {
      await expect(p.check(target(host)), host).resolves.toBeDefined();
    }
    // Loopback is allowed only by default: an allow list that does not name it refuses it.
    for (const host of ['127.0.0.1', 'localhost', '11.0.0.1', '203.0.113.7', '198.51.100.2', 'fe00::1']) {
      await refusal(p.check(target(host)));
    }
    // Every address must be allowed: 203.0.113.7 is not.
    await refusal(p.check(target('two.example')));
  });

  it('deny beats allow', async () => {
    const p = policy({ allow: ['10.0.0.0/8', 'db.example'], deny: ['10.0.0.5'] });
    await refusal(p.check(target('db.example')));
    await refusal(p.check(target('10.0.0.5')));
    await expect(p.check(target('10.0.0.6'))).resolves.toBeDefined();
    const byName = policy({ allow: ['db.example'], deny: ['db.example'] });
    await refusal(byName.check(target('db.example')));
  });
});

describe("the database that holds qrun's own metadata", () => {
  const url = 'postgres://postgres@127.0.0.1:5432/qrun_meta';

  it('is refused on the same server, port and database name, under any name of this machine', async () => {
    const p = policy({ metadataDatabaseUrl: url });
    for (const host of [
      '127.0.0.1',
      'localhost',
      '::1',
      '127.0.0.2',
      '192.0.2.2',
      'fd00::2',
      '::ffff:127.0.0.1',
    ]) {
      const err = await refusal(p.check(target(host, 5432, 'qrun_meta')));
      expect(err.message).toContain('own metadata');
    }
  });

  it('other databases, other ports and other servers are allowed', async () => {
    const p = policy({ metadataDatabaseUrl: url });
    await expect(p.check(target('127.0.0.1', 5432, 'test'))).resolves.toBeDefined();
    await expect(p.check(target('localhost', 5433, 'qrun_meta'))).resolves.toBeDefined();
    await expect(p.check(target('10.0.0.5', 5432, 'qrun_meta'))).resolves.toBeDefined();
    // Database names are exact in PostgreSQL.
    await expect(p.check(target('127.0.0.1', 5432, 'QRUN_META'))).resolves.toBeDefined();
  });

  it('localhost in the URL is the same server as 127.0.0.1 and ::1', async () => {
    const p = policy({ metadataDatabaseUrl: 'postgresql://qrun:pw@localhost/qrun_meta' });
    await refusal(p.check(target('127.0.0.1', 5432, 'qrun_meta')));
    await refusal(p.check(target('[::1]', 5432, 'qrun_meta')));
  });

  it('a remote metadata server is matched by address', async () => {
    const p = policy({ metadataDatabaseUrl: 'postgres://qrun@meta.example:6543/meta' });
    await refusal(p.check(target('10.1.1.1', 6543, 'meta')));
    await refusal(p.check(target('meta.example', 6543, 'meta')));
    await expect(p.check(target('127.0.0.1', 6543, 'meta'))).resolves.toBeDefined();
  });

  it("a Unix socket is this machine, and the database defaults to the user's name", async () => {
    await refusal(
      policy({ metadataDatabaseUrl: 'postgres://qrun@/meta?host=/var/run/postgresql' }).check(
        target('127.0.0.1', 5432, 'meta'),
      ),
    );
    await refusal(
      policy({ metadataDatabaseUrl: 'postgres://qrun@127.0.0.1' }).check(target('localhost', 5432, 'qrun')),
    );
  });

  it('a SQLite metadata store adds no rule', async () => {
    const p = policy({ metadataDatabaseUrl: 'sqlite:/tmp/qrun.sqlite' });
    await expect(p.check(target('127.0.0.1', 5432, 'qrun'))).resolves.toBeDefined();
  });
});

describe('metadataDatabaseOf reads QRUN_DATABASE_URL as pg does', () => {
  it.each([
    ['postgres://u:p@db.example:6543/meta', { host: 'db.example', port: 6543, database: 'meta' }],
    ['postgresql://u@[::1]/meta', { host: '[::1]', port: 5432, database: 'meta' }],
    [
      'postgres://u@/meta?host=/var/run/postgresql',
      { host: '/var/run/postgresql', port: 5432, database: 'meta' },
    ],
    [
      'postgres://u@%2Fvar%2Frun%2Fpostgresql/meta',
      { host: '/var/run/postgresql', port: 5432, database: 'meta' },
    ],
    ['postgres://u@h/meta?port=6000&host=other', { host: 'other', port: 6000, database: 'meta' }],
    ['postgres://qrun@h', { host: 'h', port: 5432, database: 'qrun' }],
  ])('%s', (url, expected) => {
    expect(metadataDatabaseOf(url, {})).toEqual(expected);
  });

  it('only postgres:// URLs name a database server', () => {
    expect(metadataDatabaseOf('sqlite:/data/qrun.sqlite', {})).toBeUndefined();
    expect(metadataDatabaseOf(undefined, {})).toBeUndefined();
  });
});

describe('checkedSocket', () => {
  const destination = {
    hostname: 'db.example',
    port: 5432,
    addresses: [{ address: '127.0.0.1', family: 4 as const }],
  };

  it.each([
    ['a Unix socket path', ['/var/run/postgresql/.s.PGSQL.5432']],
    ['another port', [5433, '127.0.0.1']],
  ])('refuses to connect to %s', async (_what, args) => {
    const { socket, reached } = checkedSocket(destination);
    const error = new Promise<Error>((resolve) => socket.once('error', resolve));
    (socket.connect as (...a: unknown[]) => unknown)(...args);
    expect((await error).message).toMatch(/only to the checked TCP destination/);
    expect(reached()).toBe(false);
  });

  it('names IPv6 hosts with brackets in the one unreachable message', () => {
    expect(unreachableMessage({ hostname: 'fd12::1', port: 5432 })).toBe(
      'Could not reach [fd12::1]:5432: no database answered there.',
    );
    expect(unreachableMessage({ hostname: 'db.example', port: 3306 })).toBe(
      'Could not reach db.example:3306: no database answered there.',
    );
  });
});

describe('hostname syntax', () => {
  it.each([
    ['/var/run/postgresql', /not a path/],
    ['/tmp', /not a path/],
    ['db example', /spaces/],
    ['db\texample', /spaces/],
    [' db.example', /spaces/],
    ['db.example\n', /spaces/],
    ['user@db.example', /"@"/],
    ['db\u0000.example', /control/],
    ['db\u007f.example', /control/],
    ['db\u0085.example', /control/],
    ['db\u00a0.example', /spaces/],
    ['', /empty/],
  ])('%j is refused with 400 invalid_configuration naming configuration.hostname', async (hostname, why) => {
    const p = policy();
    for (const attempt of [() => checkHostnameSyntax(hostname), () => p.check(target(hostname))]) {
      const err = await refusal(Promise.resolve().then(attempt), 'invalid_configuration');
      expect(err.message).toMatch(/^configuration\.hostname /);
      expect(err.message).toMatch(why);
    }
    expect(p.lookups).toEqual([]);
  });
});

describe('the settings', () => {
  it.each([
    ['10.0.0.0/33', /not a valid CIDR/],
    ['fd00::/129', /not a valid CIDR/],
    ['300.1.1.1/8', /not a valid CIDR/],
    ['10.0.0.0/', /not a valid CIDR/],
    ['10.0.0.0/x', /not a valid CIDR/],
    ['db example', /neither/],
    ['db..example', /neither/],
    ['-db.example', /neither/],
  ])('%j does not parse', (entry, why) => {
    expect(() => parseEgressRule(entry)).toThrow(why);
  });

  it.each([
    ['10.0.0.0/8', { kind: 'network', network: '10.0.0.0', prefix: 8, family: 4 }],
    ['::ffff:10.0.0.0/104', { kind: 'network', network: '10.0.0.0', prefix: 8, family: 4 }],
    ['FD00::/8', { kind: 'network', network: 'fd00::', prefix: 8, family: 6 }],
    ['127.1', { kind: 'network', network: '127.0.0.1', prefix: 32, family: 4 }],
    ['DB.Example.', { kind: 'name', name: 'db.example' }],
  ])('%j parses', (entry, rule) => {
    expect(parseEgressRule(entry)).toEqual(rule);
  });

  it('QRUN_EGRESS_ALLOW / QRUN_EGRESS_DENY, with the old names merged in', () => {
    const c = loadConfig({
      QRUN_EGRESS_ALLOW: '10.0.0.0/8, db.example',
      QRUN_ALLOWED_HOSTS: 'Warehouse.example',
      QRUN_EGRESS_DENY: '10.9.0.0/16',
      QRUN_DENIED_HOSTS: '10.0.0.5',
    });
    expect(c.egressAllow).toEqual(['10.0.0.0/8', 'db.example', 'warehouse.example']);
    expect(c.egressDeny).toEqual(['10.9.0.0/16', '10.0.0.5']);
    expect(loadConfig({})).toMatchObject({ egressAllow: [], egressDeny: [] });
  });

  it.each([
    ['QRUN_EGRESS_ALLOW', '10.0.0.0/33'],
    ['QRUN_EGRESS_DENY', '10.0.0.0/8, 1.2.3.4/99'],
    ['QRUN_ALLOWED_HOSTS', 'not a host'],
    ['QRUN_DENIED_HOSTS', '::/200'],
  ])('a bad %s stops qrun with one line naming it', (variable, value) => {
    let err: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as ConfigError).message).toMatch(new RegExp(`^${variable}: "`));
    expect((err as ConfigError).message).not.toContain('\n');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
