import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DependencyState, unreachable, withTimeout } from './dependencies';

describe('dependencies', () => {
  it('tells a store that cannot be reached from any other failure', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    assert.equal(unreachable(refused), 'postgres');
    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), {
      name: 'QueryFailedError',
      driverError: { code: '57P01', message: 'terminating connection due to administrator command' },
    });
    assert.equal(unreachable(shutdown), 'postgres');
    assert.equal(unreachable(new Error('Connection terminated unexpectedly')), 'postgres');
    assert.equal(
      unreachable(Object.assign(new Error('Reached the max retries'), { name: 'MaxRetriesPerRequestError' })),
      'redis',
    );
    assert.equal(unreachable(new Error('Command timed out')), 'redis');
    // a query that is wrong, or a constraint, is not an outage
    const syntax = Object.assign(new Error('syntax error'), {
      name: 'QueryFailedError',
      driverError: { code: '42601' },
    });
    assert.equal(unreachable(syntax), null);
    assert.equal(unreachable(new TypeError('x is undefined')), null);
    assert.equal(unreachable(null), null);
  });

  it('notes an outage once, describes it without its addresses, and hears when it ends', () => {
    const state = new DependencyState();
    const changes: string[] = [];
    state.onChange = (dep, up) => changes.push(`${dep} ${up ? 'up' : 'down'}`);
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });
    assert.equal(state.report(refused), true);
    assert.equal(state.report(refused), true);
    assert.equal(state.report(new Error('a bug')), false);
    assert.equal(state.isUp('postgres'), false);
    assert.deepEqual(state.missing(), ['postgres']);
    assert.match(state.describe()!, /^Postgres is unreachable \(for \d+ s\)$/);
    assert.doesNotMatch(state.describe()!, /10\.1\.2\.3/);
    state.markUp('postgres');
    state.markUp('postgres');
    assert.equal(state.describe(), null);
    assert.deepEqual(changes, ['postgres down', 'postgres up']);
  });

  it('bounds a call with a timeout', async () => {
    await assert.rejects(withTimeout(new Promise(() => undefined), 10, 'Redis'), /Redis did not answer within 10 ms/);
    assert.equal(await withTimeout(Promise.resolve(7), 1000, 'Redis'), 7);
  });
});
