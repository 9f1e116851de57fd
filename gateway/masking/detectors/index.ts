import type { Detector } from "../types.js";
import {
  anthropicKey, awsAccessKey, awsSecretKey, bearerToken, githubToken, gitlabToken, googleApiKey, jwt, npmToken, openaiKey, slackToken, slackWebhook, stripeKey,
} from "./credentials.js";
import { privateKey } from "./private-key.js";
import { providerDetectors } from "./providers.js";
import { urlPassword } from "./url-password.js";
import { secretAssignment } from "./assignment.js";
import { email } from "./email.js";
import { creditCard } from "./card.js";
import { ibanDetector } from "./iban.js";
import { ssn } from "./ssn.js";
import { phone } from "./phone.js";

/**
 * Built-in detectors in priority order: when two claim the same text, the earlier one names it
 * (a value assigned to `aws_secret_access_key` is an aws_secret_key, not a generic secret).
 * The IP detector is added by the engine because it is configurable.
 */
export const builtinDetectors: readonly Detector[] = [
  privateKey, awsAccessKey, awsSecretKey, githubToken, gitlabToken, slackWebhook, slackToken, stripeKey, googleApiKey,
  anthropicKey, openaiKey, npmToken, ...providerDetectors, jwt, bearerToken, urlPassword, secretAssignment,
  creditCard, ibanDetector, ssn, email, phone,
];

export const BUILTIN_DETECTOR_IDS: readonly string[] = [...builtinDetectors.map((d) => d.id), "ip_address"];
