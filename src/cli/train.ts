// PLACEHOLDER: replaced by the issue that implements `mnistc train`.
export async function train(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc train: not yet implemented\n");
  return 1;
}
