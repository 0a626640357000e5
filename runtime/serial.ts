/**
 * Runs async jobs one after another, in call order: a mutex for multi-step changes that must not
 * interleave (publishing a route to every thread while an arbiter joins the mesh).
 * @example const serial = new Serial(); await serial.run(async () => { await a(); await b(); });
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    this.tail = result.catch(() => undefined); // one failed job must not block the next
    return result;
  }
}
