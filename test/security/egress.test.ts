/**
 * Attack: a tenant uses qrun's network position. A hostname that is a path opens a Unix socket; a
 * link-local (cloud metadata), unspecified or multicast address is dialled like any other; other
 * spellings of an address slip past a deny list; DNS answers change between check and connect;
 * `POST /api/connections/test` tells refused from filtered ports (a port scanner); a connection points
 * at qrun's own metadata database. Defences: hostname syntax (400 invalid_configuration), the egress
 * policy (400 host_not_allowed, before any socket is opened; a query fails with the same sentence),
 * connectors that dial only the checked addresses, and one message for every TCP-level failure.
 *
 * Tests send traffic to loopback only. Refusals of other addresses are proved to come before any
 * socket: every Socket.prototype.connect call of this process is recorded, and none may go anywhere
 * but loopback; and once end to end in a network namespace with no route out (`unshare -n`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseError, type ConnectorContext } from '../../src/connectors/connector.js';
import { openMysqlConnection } from '../../src/connectors/mysql/mysql-session.js';
import { mysqlConnector } from '../../src/connectors/mysql/mysql-connector.js';
import { openPgClient } from '../../src/connectors/postgres/postgres-session.js';
import { postgresConnector } from '../../src/connectors/postgres/postgres-connector.js';
import { EgressPolicy, parseIpLiteral } from '../../src/net/egress-policy.js';
import { deploymentEnv, onScaleOut } from '../helpers/deployment.js';
import { QRUN_BIN, freePort } from '../helpers/process.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd } from '../helpers/wait.js';

const PG = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };
const MY = { hostname: '127.0.0.1', port: 3306, dbname: 'test', account: 'root' };
const ENGINES = [
  ['postgresql', PG],
  ['mysql', MY],
] as const;

/** Never reachable, whatever the settings; each must be refused before a socket is opened. */
const ALWAYS_DENIED = [
  '169.254.169.254',
  '169.254.1.1',
  'fe80::1',
  '[fe80::1]',
  '::ffff:169.254.169.254',
  '2852039166',
  'fd00:ec2::254',
  '100.100.100.200',
  '168.63.129.16',
  '0.0.0.0',
  '0',
  '::',
  '224.0.0.1',
  'ff02::1',
  '255.255.255.255',
];

// ---- what this process dials ----

interface Dial {
  host: string | undefined;
  port: number | undefined;
  path: string | undefined;
}

/** Every Socket.prototype.connect call in this process (qrun runs in it) while `fn` runs. */
async function recordDials<T>(fn: () => Promise<T>): Promise<{ result: T; dials: Dial[] }> {
  const original = net.Socket.prototype.connect;
  const dials: Dial[] = [];
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    dials.push(dialOf(args));
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof original;
  try {
    return { result: await fn(), dials };
  } finally {
    net.Socket.prototype.connect = original;
  }
}

/** connect(options), connect(port, host), connect(path), or net.connect's normalized [options, cb]. */
function dialOf(args: unknown[]): Dial {
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'number') return { port: first, host: args[1] as string | undefined, path: undefined };
  if (typeof first === 'string') return { path: first, host: undefined, port: undefined };
  const o = (first ?? {}) as { host?: string; port?: number | string; path?: string };
  return { host: o.host, port: o.port === undefined ? undefined : Number(o.port), path: o.path };
}

function isLoopback(dial: Dial): boolean {
  if (dial.path !== undefined) return false;
  const host = dial.host ?? 'localhost';
  if (host === 'localhost') return true;
  const ip = parseIpLiteral(host);
  return ip !== undefined && (ip.address.startsWith('127.') || ip.address === '::1');
}

/**
 * A TCP listener that counts the connections it accepts and hangs up at once, or with `silent` keeps
 * them open and says nothing (a port that answers no protocol).
 */
async function countingListener(
  host: string,
  options: { silent?: boolean } = {},
): Promise<{ port: number; accepted(): number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    if (!options.silent) socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- the default policy, through real HTTP ----

let s: TestServer;
const admin = () => ({ bearer: s.adminKey });

async function connectionNames(server: TestServer): Promise<string[]> {
  const r = await server.request('GET', '/api/connections', { auth: { bearer: server.adminKey } });
  expect(r.status).toBe(200);
  return r.body.data.map((c: { name: string }) => c.name).sort();
}

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

describe('a hostname that is no network host', () => {
  it.each(['/var/run/postgresql', '/tmp', 'user@127.0.0.1', '127.0.0.1 ', 'db\nhost', 'db\u0000'])(
    '%j is 400 invalid_configuration naming configuration.hostname, and nothing is saved',
    async (hostname) => {
      const before = await connectionNames(s);
      const { dials } = await recordDials(async () => {
        for (const [type, config] of ENGINES) {
          for (const [url, extra] of [
            ['/api/connections', { name: 'evil' }],
            ['/api/connections', { name: 'evil', validate: false }],
            ['/api/connections/test', {}],
          ] as const) {
            const r = await s.request('POST', url, {
              auth: admin(),
              body: { ...extra, type, configuration: { ...config, hostname } },
            });
            expect(r.status, `${type} ${url}`).toBe(400);
            expect(r.body.key).toBe('invalid_configuration');
            expect(r.body.message).toMatch(/^configuration\.hostname must /);
            expect(r.body.metadata).toEqual({ field: 'configuration.hostname' });
          }
        }
      });
      expect(await connectionNames(s)).toEqual(before);
      expect(dials.filter((d) => !isLoopback(d))).toEqual([]);
    },
  );
});

describe('always-denied destinations', () => {
  it.each(ALWAYS_DENIED)(
    '%s is 400 host_not_allowed on save (with and without validate) and test, with no socket opened to it',
    async (hostname) => {
      const before = await connectionNames(s);
      const { dials } = await recordDials(async () => {
        for (const [type, config] of ENGINES) {
          for (const [url, extra] of [
            ['/api/connections', { name: 'metadata' }],
            ['/api/connections', { name: 'metadata', validate: false }],
            ['/api/connections/test', {}],
          ] as const) {
            const r = await s.request('POST', url, {
              auth: admin(),
              body: { ...extra, type, configuration: { ...config, hostname } },
            });
            expect(r.status, `${type} ${url}`).toBe(400);
            expect(r.body.key).toBe('host_not_allowed');
            expect(r.body.message).toMatch(
              new RegExp(
                `^This qrun instance does not allow connections to ${escapeRegExp(hostname)}: .*never reachable\\.$`,
              ),
            );
            expect(r.body.metadata).toEqual({ field: 'configuration.hostname' });
          }
        }
      });
      expect(await connectionNames(s)).toEqual(before);
      // The test's own requests (and on the scale-out pass the stores) use loopback; nothing else was dialled.
      expect(dials.filter((d) => !isLoopback(d))).toEqual([]);
    },
  );

  it('an update to such a destination is refused too, and the stored connection is unchanged', async () => {
    const created = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'to-repoint', type: 'postgresql', configuration: PG },
    });
    expect(created.status).toBe(200);
    const id = created.body.data.id as string;
    const before = (await s.request('GET', `/api/connections/${id}`, { auth: admin() })).body;
    const { dials } = await recordDials(async () => {
      const r = await s.request('PUT', `/api/connections/${id}`, {
        auth: admin(),
        body: { configuration: { ...PG, hostname: '::ffff:169.254.169.254' } },
      });
      expect(r.status).toBe(400);
      expect(r.body.key).toBe('host_not_allowed');
    });
    expect((await s.request('GET', `/api/connections/${id}`, { auth: admin() })).body).toEqual(before);
    expect(dials.filter((d) => !isLoopback(d))).toEqual([]);
  });

  it('the recorder sees qrun dial an allowed destination (the check above is not vacuous)', async () => {
    const { dials } = await recordDials(() =>
      s.request('POST', '/api/connections/test', {
        auth: admin(),
        body: { type: 'postgresql', configuration: PG },
      }),
    );
    expect(dials).toContainEqual(expect.objectContaining({ host: '127.0.0.1', port: 5432 }));
  });
});

describe('TCP-level failures all read the same (no port scanning)', () => {
  it('a refused port answers "no database answered there", for both engines', async () => {
    const port = await freePort();
    for (const [type, config] of ENGINES) {
      const r = await s.request('POST', '/api/connections/test', {
        auth: admin(),
        body: { type, configuration: { ...config, port } },
      });
      expect(r.status).toBe(400);
      expect(r.body.key).toBe('connection_invalid');
      expect(r.body.message).toBe(
        `Could not connect: Could not reach 127.0.0.1:${port}: no database answered there.`,
      );
    }
  });

  it('a port that accepts and stays silent until the connect timeout reads exactly like a refused one', async () => {
    const silent = await countingListener('127.0.0.1', { silent: true });
    const closed = await freePort();
    const destination = (port: number) => ({
      hostname: '127.0.0.1',
      port,
      addresses: [{ address: '127.0.0.1', family: 4 as const }],
    });
    try {
      const messages: string[] = [];
      for (const port of [silent.port, closed]) {
        const pg = await openPgClient({ ...PG, port, ssl: false }, destination(port), 300).then(
          () => new Error('connected'),
          (e: unknown) => e,
        );
        const my = await openMysqlConnection({ ...MY, port, ssl: false }, destination(port), 300).then(
          () => new Error('connected'),
          (e: unknown) => e,
        );
        for (const err of [pg, my]) {
          expect(err).toBeInstanceOf(DatabaseError);
          messages.push((err as Error).message.replace(String(port), '<port>'));
        }
      }
      expect(silent.accepted()).toBe(2);
      expect(new Set(messages)).toEqual(
        new Set(['Could not reach 127.0.0.1:<port>: no database answered there.']),
      );
    } finally {
      await silent.close();
    }
  });

  it('database-level errors keep their own message', async () => {
    const r = await s.request('POST', '/api/connections/test', {
      auth: admin(),
      body: { type: 'postgresql', configuration: { ...PG, database: 'no_such_db_qrun_egress' } },
    });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe('connection_invalid');
    expect(r.body.message).toContain('no_such_db_qrun_egress');
  });
});

describe("qrun's own metadata database", () => {
  it.skipIf(!onScaleOut)(
    'is refused (on the scale-out pass it is PostgreSQL on this machine), while another database there is not',
    async () => {
      const metadata = new URL(s.qrun.config.databaseUrl);
      const database = decodeURIComponent(metadata.pathname.slice(1));
      expect(database).not.toBe('');
      const before = await connectionNames(s);
      for (const hostname of ['127.0.0.1', 'localhost', '127.0.0.2']) {
        const configuration = { ...PG, hostname, database };
        for (const [url, body] of [
          ['/api/connections', { name: 'meta', type: 'postgresql', configuration }],
          ['/api/connections/test', { type: 'postgresql', configuration }],
        ] as const) {
          const r = await s.request('POST', url, { auth: admin(), body });
          expect(r.status, `${hostname} ${url}`).toBe(400);
          expect(r.body.key).toBe('host_not_allowed');
          expect(r.body.message).toContain("qrun's own metadata");
        }
      }
      expect(await connectionNames(s)).toEqual(before);
      const other = await s.request('POST', '/api/connections/test', {
        auth: admin(),
        body: { type: 'postgresql', configuration: PG },
      });
      expect(other.status).toBe(200);
    },
  );
});

// ---- operator settings ----

describe('QRUN_EGRESS_DENY', () => {
  let denied: TestServer;
  let listener: Awaited<ReturnType<typeof countingListener>>;
  beforeAll(async () => {
    listener = await countingListener('127.0.0.1');
    denied = await startTestServer({ QRUN_EGRESS_DENY: '127.0.0.0/8' });
  });
  afterAll(async () => {
    await denied?.close();
    await listener?.close();
  });

  it.each([
    '127.0.0.1',
    '127.1',
    '2130706433',
    '0x7f.1',
    '0177.0.0.1',
    '::ffff:127.0.0.1',
    'localhost',
    'LocalHost',
  ])('127.0.0.0/8 refuses %s, before anything connects', async (hostname) => {
    const before = await connectionNames(denied);
    for (const [type, config] of ENGINES) {
      const configuration = { ...config, hostname, port: listener.port };
      for (const [url, body] of [
        ['/api/connections', { name: 'x', type, configuration }],
        ['/api/connections', { name: 'x', type, configuration, validate: false }],
        ['/api/connections/test', { type, configuration }],
      ] as const) {
        const r = await denied.request('POST', url, { auth: { bearer: denied.adminKey }, body });
        expect(r.status, `${type} ${url}`).toBe(400);
        expect(r.body.key).toBe('host_not_allowed');
        expect(r.body.message).toContain(`connections to ${hostname}: `);
      }
    }
    expect(await connectionNames(denied)).toEqual(before);
    expect(listener.accepted()).toBe(0);
  });
});

describe('QRUN_EGRESS_ALLOW (and the old QRUN_ALLOWED_HOSTS, merged in)', () => {
  let allowing: TestServer;
  let listener: Awaited<ReturnType<typeof countingListener>>;
  beforeAll(async () => {
    listener = await countingListener('127.0.0.2');
    allowing = await startTestServer({ QRUN_EGRESS_ALLOW: 'localhost', QRUN_ALLOWED_HOSTS: '127.0.0.2' });
  });
  afterAll(async () => {
    await allowing?.close();
    await listener?.close();
  });

  const test = (configuration: object) =>
    allowing.request('POST', '/api/connections/test', {
      auth: { bearer: allowing.adminKey },
      body: { type: 'postgresql', configuration },
    });

  it('allows the listed host name, and only it', async () => {
    const named = await test({ ...PG, hostname: 'localhost' });
    expect(named.status).toBe(200);
    expect(named.body.data.status).toBe('healthy');
    for (const hostname of ['127.0.0.1', '::1', '127.1']) {
      const r = await test({ ...PG, hostname });
      expect(r.status, hostname).toBe(400);
      expect(r.body.key).toBe('host_not_allowed');
    }
  });

  it('the alias adds its entries: 127.0.0.2 is dialled (and answers nothing a database would)', async () => {
    const r = await test({ ...PG, hostname: '127.0.0.2', port: listener.port });
    expect(r.body.key).not.toBe('host_not_allowed');
    expect(listener.accepted()).toBeGreaterThan(0);
  });
});

describe('a connection that is no longer allowed', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-egress-'));
  let deployment: Awaited<ReturnType<typeof deploymentEnv>> | undefined;
  let listener: Awaited<ReturnType<typeof countingListener>>;
  beforeAll(async () => {
    listener = await countingListener('127.0.0.2');
    deployment = await deploymentEnv(dataDir);
  });
  afterAll(async () => {
    await listener?.close();
    await deployment?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('fails its queries with the same sentence as the 400, and nothing reaches the server', async () => {
    const env = {
      ...deployment!.env,
      QRUN_FILE_ROOT: path.join(dataDir, '..', `${path.basename(dataDir)}-files`),
    };
    const configuration = { ...PG, hostname: '127.0.0.2', port: listener.port };

    // Saved while the policy allowed it (without a test: nothing listening there speaks PostgreSQL).
    const first = await startTestServer(env, { dataDir });
    let id: string;
    try {
      const created = await first.request('POST', '/api/connections', {
        auth: { bearer: first.adminKey },
        body: { name: 'was-allowed', type: 'postgresql', validate: false, configuration },
      });
      expect(created.status).toBe(200);
      id = created.body.data.id;
    } finally {
      await first.close();
    }

    // The operator denies it; the same installation starts again.
    const second = await startTestServer({ ...env, QRUN_EGRESS_DENY: '127.0.0.2/32' }, { dataDir });
    try {
      const auth = { bearer: second.adminKey };
      const direct = await second.request('POST', '/api/connections/test', {
        auth,
        body: { type: 'postgresql', configuration },
      });
      expect(direct.status).toBe(400);
      expect(direct.body.key).toBe('host_not_allowed');

      const submitted = await second.request('POST', `/api/connections/${id}/query`, {
        auth,
        body: { query: 'select 1' },
      });
      expect(submitted.status).toBe(200);
      expect(submitted.body.data.status).toBe('created');
      const answer = await waitForQueryEnd(second, auth, submitted.body.data.id);
      expect(answer.body.data.status).toBe('failed');
      expect(answer.body.data.error).toBe(direct.body.message);
      expect(answer.body.data.error).toMatch(
        /^This qrun instance does not allow connections to 127\.0\.0\.2: /,
      );
    } finally {
      await second.close();
    }
    expect(listener.accepted()).toBe(0);
    rmSync(env.QRUN_FILE_ROOT, { recursive: true, force: true });
  });
});

// ---- the connectors dial the checked addresses, and TLS still checks the host name ----

/** A self-signed certificate (CN qrun-tls-test.invalid): no client may accept it. */
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvtDZwQOniMYagIlu
SuxZ6wrvqihl8bFtonoSySmmQ4ahRANCAASYjSAQZ/9OZ8VutOESYBttJCiC632Q
IM1lcsuL5oz29LtHUiz2HBSv2armKLBCrKVhKbL5B8yOTKpHNMPDEnE8
-----END PRIVATE KEY-----`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBmDCCAT2gAwIBAgIUHQzQpW+qU8PW7A+/hpNeTATSk5MwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVcXJ1bi10bHMtdGVzdC5pbnZhbGlkMCAXDTI2MTEzMDE2Mjkz
MFoYDzIxMjYxMTA2MTYyOTMwWjAgMR4wHAYDVQQDDBVxcnVuLXRscy10ZXN0Lmlu
dmFsaWQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASYjSAQZ/9OZ8VutOESYBtt
JCiC632QIM1lcsuL5oz29LtHUiz2HBSv2armKLBCrKVhKbL5B8yOTKpHNMPDEnE8
o1MwUTAdBgNVHQ4EFgQUqa3h6SxdW3leDU2C2+YBqTV0dD8wHwYDVR0jBBgwFoAU
qa3h6SxdW3leDU2C2+YBqTV0dD8wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNJADBGAiEA+cB5YiuDrYsBQdgCvK9pqzVbUB6KqLpvF4u5P1a/MWoCIQD5op9r
VGIxr2+OfK7PID0jd+etd2Ane0KJ1ZJrkRdtkw==
-----END CERTIFICATE-----`;

/**
 * A server on 127.0.0.1 that gets a client as far as the TLS handshake (PostgreSQL's SSLRequest, or
 * MySQL's greeting with CLIENT_SSL) and records the TLS server name (SNI) the client asked for.
 */
async function tlsRecorder(engine: 'postgresql' | 'mysql') {
  const names: (string | undefined)[] = [];
  const context = tls.createSecureContext({ key: TLS_KEY, cert: TLS_CERT });
  const tlsServer = tls.createServer({
    key: TLS_KEY,
    cert: TLS_CERT,
    SNICallback: (name, done) => {
      names.push(name);
      done(null, context);
    },
  });
  tlsServer.on('tlsClientError', () => undefined);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    // Bytes the client sends before TLS: PostgreSQL's 8-byte SSLRequest, MySQL's 36-byte SSL request.
    const preamble = engine === 'postgresql' ? 8 : 36;
    if (engine === 'mysql') socket.write(mysqlGreeting());
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < preamble) return;
      socket.off('data', onData);
      socket.pause();
      if (buffered.length > preamble) socket.unshift(buffered.subarray(preamble));
      if (engine === 'postgresql') socket.write('S');
      tlsServer.emit('connection', socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    names: () => names,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** MySQL protocol 10 greeting offering TLS (CLIENT_SSL) and protocol 4.1. */
function mysqlGreeting(): Buffer {
  const capabilities = 0x1 | 0x8 | 0x200 | 0x800 | 0x2000 | 0x8000 | 0x80000;
  const payload = Buffer.concat([
    Buffer.from([10]),
    Buffer.from('8.0.0-qrun-fake\0'),
    Buffer.from([1, 0, 0, 0]),
    Buffer.from('abcdefgh\0'),
    Buffer.from([capabilities & 0xff, (capabilities >> 8) & 0xff]),
    Buffer.from([0x21, 0x02, 0x00]),
    Buffer.from([(capabilities >> 16) & 0xff, (capabilities >> 24) & 0xff]),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.from('ijklmnopqrst\0'),
    Buffer.from('mysql_native_password\0'),
  ]);
  const header = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, 0]);
  return Buffer.concat([header, payload]);
}

describe.each([
  ['postgresql', postgresConnector, PG],
  ['mysql', mysqlConnector, MY],
] as const)('%s dials the checked address under the name the user gave', (engine, connector, base) => {
  // A name no resolver knows: only the policy's own lookup (asked once) can turn it into 127.0.0.1.
  const NAME = 'warehouse.qrun-egress.test';

  function contextResolving(addresses: string[][]) {
    const lookups: string[] = [];
    const egress = new EgressPolicy({
      lookup: async (hostname) => {
        const answer = addresses[Math.min(lookups.length, addresses.length - 1)] ?? [];
        lookups.push(hostname);
        return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      },
    });
    const context: ConnectorContext = { fileDir: '/nonexistent', egress };
    return { context, lookups };
  }

  it('with TLS on, the server is asked for the host name (SNI), and its self-signed certificate is refused', async () => {
    const recorder = await tlsRecorder(engine);
    try {
      const { context, lookups } = contextResolving([['127.0.0.1']]);
      const config = { ...base, hostname: NAME, port: recorder.port, ssl: true, password: 'never-sent' };
      const err = await connector.test(config, context).then(
        () => new Error('connected'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DatabaseError);
      expect((err as Error).message).toMatch(/self[- ]signed certificate/i);
      expect(recorder.names()).toEqual([NAME]);
      expect(lookups).toEqual([NAME]);
    } finally {
      await recorder.close();
    }
  });

  it('a name that resolves to a denied address as well is refused whole, and rebinding after the check changes nothing', async () => {
    const listener = await countingListener('127.0.0.1');
    try {
      const refused = contextResolving([['127.0.0.1', '169.254.169.254']]);
      const err = await connector
        .test({ ...base, hostname: NAME, port: listener.port, ssl: false }, refused.context)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect((err as { key?: string }).key).toBe('host_not_allowed');
      expect(listener.accepted()).toBe(0);

      // First answer 127.0.0.1 (checked, dialled); any later lookup would say 169.254.169.254.
      const rebinding = contextResolving([['127.0.0.1'], ['169.254.169.254']]);
      const { dials } = await recordDials(() =>
        connector
          .test({ ...base, hostname: NAME, port: listener.port, ssl: false }, rebinding.context)
          .catch(() => undefined),
      );
      expect(rebinding.lookups).toEqual([NAME]);
      expect(listener.accepted()).toBe(1);
      expect(dials.filter((d) => !isLoopback(d))).toEqual([]);
    } finally {
      await listener.close();
    }
  });
});

// ---- end to end, with no route out ----

/** `unshare -n` (a new network namespace: only a loopback, brought up here) works on this machine. */
const namespaces =
  spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore' }).status === 0;

/** Runs inside the namespace: starts `qrun start`, sends the requests, prints the answers as one JSON line. */
const NAMESPACE_SCRIPT = `
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
const { bin, dataDir, port, requests } = JSON.parse(process.env.EGRESS_TEST);
const qrun = spawn(process.execPath, [bin, 'start'], { env: { ...process.env, QRUN_PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
const base = 'http://127.0.0.1:' + port;
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(base + '/readyz')).status === 200) break; } catch {}
    if (i > 300) throw new Error('qrun did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const key = readFileSync(dataDir + '/admin-key', 'utf8').trim();
  const answers = [];
  for (const [method, url, body] of requests) {
    const r = await fetch(base + url, { method, headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    answers.push({ status: r.status, body: await r.json() });
  }
  console.log(JSON.stringify(answers));
} finally {
  qrun.kill('SIGTERM');
}
`;

describe('in a network namespace with no route out', () => {
  it.skipIf(!namespaces)(
    'a real qrun refuses link-local, mapped and unspecified addresses with host_not_allowed, while an unroutable address only fails to connect',
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'qrun-netns-'));
      const dataDir = path.join(dir, 'data');
      try {
        const pg = (hostname: string, port = 5432) => ({ ...PG, hostname, port });
        const requests = [
          ['POST', '/api/connections/test', { type: 'postgresql', configuration: pg('169.254.169.254') }],
          [
            'POST',
            '/api/connections',
            { name: 'a', type: 'postgresql', validate: false, configuration: pg('fe80::1') },
          ],
          [
            'POST',
            '/api/connections/test',
            { type: 'mysql', configuration: { ...MY, hostname: '::ffff:169.254.169.254' } },
          ],
          ['POST', '/api/connections/test', { type: 'postgresql', configuration: pg('0.0.0.0') }],
          ['POST', '/api/connections/test', { type: 'postgresql', configuration: pg('/var/run/postgresql') }],
          // Controls: no policy rule refuses these; the namespace has no route to 192.0.2.1 (TEST-NET-1)
          // and nothing listens on port 1, and both read alike.
          ['POST', '/api/connections/test', { type: 'postgresql', configuration: pg('192.0.2.1') }],
          ['POST', '/api/connections/test', { type: 'postgresql', configuration: pg('127.0.0.1', 1) }],
          [
            'POST',
            '/api/connections/test',
            { type: 'mysql', configuration: { ...MY, hostname: '192.0.2.1' } },
          ],
          ['GET', '/api/connections'],
        ];
        const env = {
          ...process.env,
          // The embedded default: PostgreSQL and Redis are not reachable from inside the namespace.
          QRUN_DATA_DIR: dataDir,
          QRUN_FILE_ROOT: path.join(dir, 'files'),
          QRUN_DATABASE_URL: `sqlite:${path.join(dataDir, 'qrun.sqlite')}`,
          QRUN_RESULTS_URL: `file:${path.join(dataDir, 'results')}`,
          QRUN_REDIS_URL: '',
          QRUN_LOG_LEVEL: 'warn',
          EGRESS_TEST: JSON.stringify({ bin: QRUN_BIN, dataDir, port: 18080, requests }),
        };
        const script = `ip link set lo up && exec ${JSON.stringify(process.execPath)} --input-type=module -e "$EGRESS_SCRIPT"`;
        const child = spawn('unshare', ['-n', 'sh', '-c', script], {
          env: { ...env, EGRESS_SCRIPT: NAMESPACE_SCRIPT },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
        expect(code, err).toBe(0);
        const answers = JSON.parse(out.trim().split('\n').pop() ?? '[]') as { status: number; body: any }[];
        expect(answers).toHaveLength(requests.length);

        for (const [i, hostname] of [
          '169.254.169.254',
          'fe80::1',
          '::ffff:169.254.169.254',
          '0.0.0.0',
        ].entries()) {
          expect(answers[i]!.status, hostname).toBe(400);
          expect(answers[i]!.body.key).toBe('host_not_allowed');
          expect(answers[i]!.body.message).toContain(`does not allow connections to ${hostname}: `);
        }
        expect(answers[4]!.body.key).toBe('invalid_configuration');
        expect(answers[5]!.body).toMatchObject({
          key: 'connection_invalid',
          message: 'Could not connect: Could not reach 192.0.2.1:5432: no database answered there.',
        });
        expect(answers[6]!.body).toMatchObject({
          key: 'connection_invalid',
          message: 'Could not connect: Could not reach 127.0.0.1:1: no database answered there.',
        });
        expect(answers[7]!.body.message).toBe(
          'Could not connect: Could not reach 192.0.2.1:3306: no database answered there.',
        );
        expect(answers[8]!.body.data).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
