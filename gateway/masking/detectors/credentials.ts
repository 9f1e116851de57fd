/**
 * Cloud and SaaS credentials with a recognisable shape. Each regex starts with a literal
 * prefix (so the engine skips most positions quickly) and uses bounded quantifiers only.
 *
 * Documented example keys such as AWS's `AKIAIOSFODNN7EXAMPLE` are masked like live ones:
 * a gateway cannot tell documentation from a leaked key, and a masked example costs nothing.
 */
import { regexDetector } from "./regex-detector.js";
import type { Detector } from "../types.js";
import type { TextFeatures } from "../features.js";

/** Every token-shaped credential has a run of at least 16 token characters. */
const tokenShaped = (f: TextFeatures): boolean => f.longestTokenRun >= 16;

const hasDigitAndLetter = (v: string): boolean => /[0-9]/.test(v) && /[A-Za-z]/.test(v);

export const awsAccessKey: Detector = regexDetector({
  id: "aws_access_key",
  category: "credential",
  re: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b/g,
  needs: (f) => f.longestTokenRun >= 20,
});

/** A 40-character secret key is only recognisable by the name it is assigned to. */
export const awsSecretKey: Detector = regexDetector({
  id: "aws_secret_key",
  category: "credential",
  needs: (f) => f.longestTokenRun >= 12 && (f.colon || f.equals),
  re: /(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["']?\s{0,3}(?:[:=]|=>)\s{0,3}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
  group: 1,
});

export const githubToken: Detector = regexDetector({
  needs: tokenShaped,
  id: "github_token",
  category: "credential",
  re: /\b(?:gh[pousr]_[A-Za-z0-9_]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b/g,
  anyOf: ["gh", "github_pat_"],
});

// No token-run pre-check where the body may break runs (`.`, `/`, `~`): the literal pre-check
// alone decides, or a short value would be skipped that a long text has masked.
export const gitlabToken: Detector = regexDetector({
  id: "gitlab_token",
  category: "credential",
  re: /\bglpat-[A-Za-z0-9_.-]{20,255}/g,
  anyOf: ["glpat-"],
});

export const slackToken: Detector = regexDetector({
  // `xoxb-` and ten more is a run of 15.
  needs: (f) => f.longestTokenRun >= 15,
  id: "slack_token",
  category: "credential",
  re: /\b(?:xox[abposr]-[A-Za-z0-9-]{10,250}|xapp-\d-[A-Za-z0-9-]{10,250})/g,
  anyOf: ["xox", "xapp-"],
});

export const slackWebhook: Detector = regexDetector({
  id: "slack_webhook",
  category: "credential",
  re: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/-]{10,250}/g,
  anyOf: ["hooks.slack.com"],
});

export const stripeKey: Detector = regexDetector({
  needs: tokenShaped,
  id: "stripe_key",
  category: "credential",
  re: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,247}\b/g,
  anyOf: ["k_live_", "k_test_"],
});

export const googleApiKey: Detector = regexDetector({
  needs: tokenShaped,
  id: "google_api_key",
  category: "credential",
  re: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g,
  anyOf: ["AIza"],
});

export const anthropicKey: Detector = regexDetector({
  needs: tokenShaped,
  id: "anthropic_key",
  category: "credential",
  re: /\bsk-ant-[A-Za-z0-9_-]{20,250}/g,
  anyOf: ["sk-ant-"],
});

export const openaiKey: Detector = regexDetector({
  needs: tokenShaped,
  id: "openai_key",
  category: "credential",
  re: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,250}/g,
  anyOf: ["sk-"],
  validate: (v) => !v.startsWith("sk-ant-") && hasDigitAndLetter(v.slice(3)),
});

export const npmToken: Detector = regexDetector({
  needs: tokenShaped,
  id: "npm_token",
  category: "credential",
  re: /\bnpm_[A-Za-z0-9]{36}\b/g,
  anyOf: ["npm_"],
});

/** Header and payload both start with `{"` in base64url, which is what `eyJ` encodes. */
export const jwt: Detector = regexDetector({
  needs: tokenShaped,
  id: "jwt",
  category: "credential",
  re: /\beyJ[A-Za-z0-9_-]{8,8192}\.eyJ[A-Za-z0-9_-]{8,65536}\.[A-Za-z0-9_-]{0,8192}/g,
  anyOf: ["eyJ"],
});

/** Opaque tokens after `Bearer` (HTTP Authorization headers, curl commands). */
export const bearerToken: Detector = regexDetector({
  id: "bearer_token",
  category: "credential",
  re: /\b[Bb]earer\s{1,3}([A-Za-z0-9._~+/-]{16,4096}=*)/g,
  group: 1,
  anyOf: ["earer"],
  validate: (v) => hasDigitAndLetter(v) && !v.startsWith("eyJ"),
});
