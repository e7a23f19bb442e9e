/**
 * A parameterised WHERE clause built from optional filters: `add('col = ?', value)` appends the
 * condition with its `?` numbered as the next placeholder, so values never enter the SQL text.
 */
export class SqlFilter {
  readonly params: unknown[] = [];
  private readonly conditions: string[] = [];

  add(sql: string, value: unknown): this {
    this.conditions.push(sql.replace('?', this.param(value)));
    return this;
  }

  /** A condition without a value. */
  addRaw(sql: string): this {
    this.conditions.push(sql);
    return this;
  }

  /** Adds a value and returns its placeholder (`$n`), for LIMIT and the like. */
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  get where(): string {
    return this.conditions.length === 0 ? '' : `WHERE ${this.conditions.join(' AND ')}`;
  }
}
