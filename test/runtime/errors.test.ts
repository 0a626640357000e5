import { expect } from 'chai';
import { ActorGoneError, AskTimeoutError, registerErrorClass, reviveError, serializeError } from '../../runtime/errors';
import { NotLeaderError } from './fixtures/fixture-errors';

describe('runtime/errors', () => {
  it('revives a registered error as its class with its fields, keeping the remote stack', () => {
    const original = new NotLeaderError('n3');
    const wire = structuredClone(serializeError(original));
    expect(wire).to.include({ name: 'NotLeaderError', code: 'FixtureNotLeader', message: original.message });
    expect(wire.props).to.deep.equal({ code: 'FixtureNotLeader', leaderId: 'n3' }); // name travels on its own
    const revived = reviveError(wire);
    expect(revived).to.be.instanceOf(NotLeaderError);
    expect((revived as NotLeaderError).leaderId).to.equal('n3');
    expect(revived.stack).to.equal(original.stack);
  });

  it("revives the runtime's own errors", () => {
    const gone = reviveError(structuredClone(serializeError(new ActorGoneError('a', 'stopped'))));
    expect(gone).to.be.instanceOf(ActorGoneError);
    expect(gone).to.include({ actorId: 'a', reason: 'stopped' });
    const timeout = reviveError(structuredClone(serializeError(new AskTimeoutError('b', 250))));
    expect(timeout).to.be.instanceOf(AskTimeoutError).and.include({ actorId: 'b', timeoutMs: 250 });
  });

  it('revives an unregistered error as a plain Error with the same name, message and properties', () => {
    const err = Object.assign(new TypeError('bad'), { code: 'NOPE_UNREGISTERED', detail: { x: 1 } });
    const revived = reviveError(structuredClone(serializeError(err)));
    expect(revived).to.be.instanceOf(Error);
    expect(revived).to.include({ name: 'TypeError', message: 'bad', code: 'NOPE_UNREGISTERED' });
    expect((revived as unknown as { detail: unknown }).detail).to.deep.equal({ x: 1 });
  });

  it('makes uncloneable properties cloneable, serializes causes, and wraps thrown non-errors', () => {
    const err = Object.assign(new Error('outer', { cause: new ActorGoneError('c', 'crashed') }), { fn: () => 1 });
    const wire = serializeError(err);
    expect(() => structuredClone(wire)).to.not.throw();
    expect(wire.props.fn).to.be.a('string');
    const revived = reviveError(structuredClone(wire));
    expect(revived.cause).to.be.instanceOf(ActorGoneError);
    expect(serializeError('just a string').message).to.contain('just a string');
  });

  it('uses the latest factory registered for a code', () => {
    class Special extends Error {
      readonly code = 'TestSpecial';
    }
    registerErrorClass('TestSpecial', () => new Special('rebuilt'));
    expect(reviveError(serializeError(new Special('x')))).to.be.instanceOf(Special);
  });
});
