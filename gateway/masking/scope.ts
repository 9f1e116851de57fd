/**
 * The scope of pseudonyms and of their restoration: one caller (issuer + subject, so two
 * identity providers' "alice" stay apart) on one connection. Every replica computes the same
 * scope for the same caller, so it works for stateless callers and across replicas.
 */
export function maskingScope(caller: { issuer: string; subject: string }, connection: string): string {
  return JSON.stringify([caller.issuer, caller.subject, connection]);
}
