// PLACEHOLDER: replaced by the issue that implements `mnistc eval`.
export async function evaluate(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc eval: not yet implemented\n");
  return 1;
}
