// PLACEHOLDER: replaced by the issue that implements `mnistc params`.
export async function params(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc params: not yet implemented\n");
  return 1;
}
