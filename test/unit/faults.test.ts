// Driver errors to exit codes (src/core/faults.ts), secrets masked in any text (src/core/redact.ts),
// and what is read from a URL that does not parse (src/core/url.ts).
import { describe, expect, it } from 'vitest';
import { classifyPgFault, classifyRedisFault, serverMessageOf, sqlstateOf } from '../../src/core/faults.js';
import { redactDeep, redactText, redactUrl, secretsOf } from '../../src/core/redact.js';
import { rawPort, unparsableReason } from '../../src/core/url.js';
import { DoctorError } from '../../src/errors.js';

/** A node-postgres DatabaseError's shape: severity, SQLSTATE code, message. */
const pgServer = (code: string, message: string) => Object.assign(new Error(message), { severity: 'ERROR', code });
const sock = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });

describe('classifyPgFault', () => {
  const cases: Array<[string, unknown, string, number]> = [
    ['permission denied', pgServer('42501', 'permission denied for schema s'), 'PERMISSION_DENIED', 4],
    ['lock timeout', pgServer('55P03', 'canceling statement due to lock timeout'), 'TIMEOUT', 4],
    ['statement timeout', pgServer('57014', 'canceling statement due to statement timeout'), 'TIMEOUT', 4],
    ['cancelled by another session', pgServer('57014', 'canceling statement due to user request'), 'BUSY', 4],
    ['read-only transaction', pgServer('25006', 'cannot execute CREATE SCHEMA in a read-only transaction'), 'REFUSED', 4],
    ['deadlock (class 40)', pgServer('40P01', 'deadlock detected'), 'BUSY', 4],
    ['too many connections (class 53)', pgServer('53300', 'sorry, too many clients already'), 'BUSY', 4],
    ['bad password (class 28)', pgServer('28P01', 'password authentication failed for user "u"'), 'AUTH_FAILED', 3],
    ['unknown role (class 28)', pgServer('28000', 'role "x" does not exist'), 'AUTH_FAILED', 3],
    ['no such database', pgServer('3D000', 'database "x" does not exist'), 'UNREACHABLE', 3],
    ['admin shutdown', pgServer('57P01', 'terminating connection due to administrator command'), 'CONNECTION_LOST', 3],
    ['connection exception (class 08)', pgServer('08006', 'connection failure'), 'CONNECTION_LOST', 3],
    ['refused', sock('ECONNREFUSED'), 'UNREACHABLE', 3],
    ['reset mid-run', sock('ECONNRESET'), 'CONNECTION_LOST', 3],
    ['connect timeout', new Error('timeout expired'), 'UNREACHABLE', 3],
    ['no reply', new Error('Query read timeout'), 'CONNECTION_LOST', 3],
    ['terminated', new Error('Connection terminated unexpectedly'), 'CONNECTION_LOST', 3],
    ['no TLS on the server', new Error('The server does not support SSL connections'), 'TLS_FAILED', 3],
    // node-postgres' words when the server asks for SCRAM and it has no password (lib/crypto/sasl.js)
    ['SCRAM asked, no password', new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), 'AUTH_FAILED', 3],
    ['SCRAM asked, an empty password', new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a non-empty string'), 'AUTH_FAILED', 3],
    ['untrusted certificate', Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'TLS_FAILED', 3],
  ];
  for (const [name, err, code, exit] of cases) {
    it(`${name}: ${code}, exit ${exit}, one line`, () => {
      const d = classifyPgFault(err, 'h:5432/db');
      expect(d).toBeInstanceOf(DoctorError);
      expect(d!.code).toBe(code);
      expect(d!.exitCode).toBe(exit);
      expect(d!.message).not.toMatch(/\n/);
    });
  }
  it('names the flag that raises a timeout', () => {
    expect(classifyPgFault(pgServer('57014', 'canceling statement due to statement timeout'), 'h')!.message).toMatch(/--statement-timeout/);
    expect(classifyPgFault(pgServer('55P03', 'canceling statement due to lock timeout'), 'h')!.message).toMatch(/--lock-timeout/);
    expect(classifyPgFault(new Error('timeout expired'), 'h')!.message).toMatch(/--connect-timeout/);
  });
  it('leaves our own bugs unclassified (exit 70): a syntax error, a TypeError', () => {
    expect(classifyPgFault(pgServer('42601', 'syntax error at or near "x"'), 'h')).toBeUndefined();
    expect(classifyPgFault(new TypeError("Cannot read properties of null (reading 'x')"), 'h')).toBeUndefined();
  });
  it('masks a password a driver message carries', () => {
    expect(classifyPgFault(new Error('Connection terminated: postgresql://u:Hunter22@h/db'), 'h')!.message).not.toContain('Hunter22');
  });
});

describe('classifyRedisFault', () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
  const cases: Array<[string, unknown, string, number]> = [
    ['wrong password', reply('WRONGPASS invalid username-password pair or user is disabled.'), 'AUTH_FAILED', 3],
    ['auth required', reply('NOAUTH Authentication required.'), 'AUTH_FAILED', 3],
    ['ACL denies a command', reply("NOPERM this user has no permissions to run the 'xinfo' command"), 'PERMISSION_DENIED', 4],
    ['database out of range', reply('ERR DB index is out of range'), 'BAD_INPUT', 2],
    ['read-only replica', reply("READONLY You can't write against a read only replica."), 'REFUSED', 4],
    ['loading', reply('LOADING Redis is loading the dataset in memory'), 'BUSY', 4],
    ['no reply', new Error('Command timed out'), 'CONNECTION_LOST', 3],
    ['closed mid-run', new Error('Connection is closed.'), 'CONNECTION_LOST', 3],
    ['reset', sock('ECONNRESET'), 'CONNECTION_LOST', 3],
    ['refused', sock('ECONNREFUSED'), 'UNREACHABLE', 3],
    ['TLS to a plain server', Object.assign(new Error('write EPROTO 0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number'), { code: 'EPROTO' }), 'TLS_FAILED', 3],
  ];
  for (const [name, err, code, exit] of cases) {
    it(`${name}: ${code}, exit ${exit}`, () => {
      const d = classifyRedisFault(err, 'h:6379');
      expect(d!.code).toBe(code);
      expect(d!.exitCode).toBe(exit);
    });
  }
  it('leaves WRONGTYPE (our bug or a target we should have checked) unclassified', () => {
    expect(classifyRedisFault(reply('WRONGTYPE Operation against a key holding the wrong kind of value'), 'h')).toBeUndefined();
  });
});

describe('redaction of anything that looks like a URL', () => {
  it('masks a password holding / : or @, URLs that do not parse included', () => {
    expect(redactUrl('postgresql://u:pa/ss@host/db')).toBe('postgresql://u:***@host/db');
    expect(redactUrl('x postgresql://u:a:b@c@host:5432/db y')).toBe('x postgresql://u:***@host:5432/db y');
    expect(redactUrl('rediss://:pw@h:6380/0')).toBe('rediss://:***@h:6380/0');
  });
  it('masks password query parameters, and keeps a user without password', () => {
    expect(redactUrl('postgresql://u@127.0.0.1:99999/db?password=S3cret')).toBe('postgresql://u@127.0.0.1:99999/db?password=***');
    expect(redactUrl('postgresql://h/db?sslmode=require&sslpassword=k3y&x=1')).toBe('postgresql://h/db?sslmode=require&sslpassword=***&x=1');
  });
  it('masks each node of a comma-separated cluster list', () => {
    expect(redactUrl('redis://:a1b2@h1:7000,redis://u:c3d4@h2:7001')).toBe('redis://:***@h1:7000,redis://u:***@h2:7001');
  });
  it('stops at quotes, also JSON-escaped ones', () => {
    expect(redactUrl('URL "postgresql://u:pw@h/db" bad')).toBe('URL "postgresql://u:***@h/db" bad');
    expect(redactUrl('"URL \\"postgresql://u@h/db?password=pw\\" bad"')).toBe('"URL \\"postgresql://u@h/db?password=***\\" bad"');
  });
  it('masks password= pairs outside URLs and known secrets, raw and percent-encoded', () => {
    expect(redactText('host=h password=S3cret dbname=x')).toBe('host=h password=*** dbname=x');
    expect(redactText('auth with p@ss/w0rd and p%40ss%2Fw0rd', ['p@ss/w0rd'])).toBe('auth with *** and ***');
  });
  it('secretsOf finds the passwords of URLs that do not parse', () => {
    expect(secretsOf(['postgresql://u:pa/ss@host/db'])).toContain('pa/ss');
    expect(secretsOf(['postgresql://u@h:99999/db?password=S3cret'])).toContain('S3cret');
    expect(secretsOf(['redis://:a%2Fb@h1,redis://:cd@h2'])).toEqual(expect.arrayContaining(['a%2Fb', 'a/b', 'cd']));
  });
  it('redactDeep masks every string of a document', () => {
    expect(redactDeep({ a: ['redis://:zz9@h'], b: { c: 'x Tok3n!' }, n: 1 }, ['Tok3n!'])).toEqual({ a: ['redis://:***@h'], b: { c: 'x ***' }, n: 1 });
  });
});

describe('rawPort / unparsableReason', () => {
  it('reads the port past a password holding / : or @', () => {
    expect(rawPort('postgresql://u@127.0.0.1:99999/db?password=S3cret')).toBe('99999');
    expect(rawPort('postgresql://u:p:1/x@h:5433/db')).toBe('5433');
    expect(rawPort('postgresql://h/db')).toBeUndefined();
    expect(unparsableReason('redis://h:70000')).toMatch(/port 70000 is out of range/);
  });
});

describe('the SQLSTATE under a classified error (retry rules read it: migrate builds, repair batches)', () => {
  it('reads the driver error under the DoctorError Db throws, not the DoctorError code', () => {
    const lockTimeout = pgServer('55P03', 'canceling statement due to lock timeout');
    const classified = classifyPgFault(lockTimeout, 'h:1/db')!;
    expect(classified.code).toBe('TIMEOUT');
    expect(sqlstateOf(classified)).toBe('55P03');
    expect(serverMessageOf(classified)).toBe('canceling statement due to lock timeout');
    expect(sqlstateOf(classifyPgFault(pgServer('40P01', 'deadlock detected'), 'h:1/db'))).toBe('40P01');
  });
  it('reads an unclassified server error as is, and nothing from a socket error or a DoctorError of our own', () => {
    expect(sqlstateOf(pgServer('42P10', 'no unique constraint'))).toBe('42P10');
    expect(sqlstateOf(sock('ECONNRESET'))).toBeNull();
    expect(sqlstateOf(new DoctorError('REFUSED', 'no'))).toBeNull();
    expect(serverMessageOf(new DoctorError('REFUSED', 'no'))).toBe('no');
  });
});
