/*
 * explain.c: plain words for why a row failed, what to do, and whether a retry can
 * help; the one table the API serves with failed rows (GET /api/v1/errors) and the UI
 * shows. Matched against the error text the connector stored: Braze's per-object codes
 * (braze-api.md §2, "Partial"), its prose messages, and the HTTP outcomes of
 * src/dest/braze.c ("HTTP 400: ...", "POST /users/track: HTTP 503 ... (gave up after 5
 * attempts)", transport errors). First match wins, so specific entries come first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/serverp.h"

struct rule {
	const char *needle; /* case-insensitive substring of the error text */
	struct explanation e;
};

static const struct rule rules[] = {
	{ "BLACKLISTED_EXTERNAL_USER_ID",
	  { "BLACKLISTED_EXTERNAL_USER_ID", "Braze refuses this user ID: it is on Braze's list of blocked IDs (test or placeholder values such as \"0\", \"null\" or \"test\").",
	    "Fix the record's ID in the source (or leave the record out with a group); joey sends it again once it changes.", false } },
	{ "is blacklisted",
	  { "BLACKLISTED_EXTERNAL_USER_ID", "Braze refuses this user ID: it is on Braze's list of blocked IDs (test or placeholder values such as \"0\", \"null\" or \"test\").",
	    "Fix the record's ID in the source (or leave the record out with a group); joey sends it again once it changes.", false } },
	{ "EXTERNAL_USER_ID_TOO_LARGE",
	  { "EXTERNAL_USER_ID_TOO_LARGE", "The user ID is longer than Braze allows (987 bytes).",
	    "Shorten the ID in the source, or map a shorter property as the Braze user ID.", false } },
	{ "EMAIL_BAD_FORMAT",
	  { "EMAIL_BAD_FORMAT", "Braze says the email address is not a valid address.",
	    "Correct the email in the source, or stop sending the email field for records without a valid one.", false } },
	{ "not a valid email",
	  { "EMAIL_BAD_FORMAT", "Braze says the email address is not a valid address.",
	    "Correct the email in the source, or stop sending the email field for records without a valid one.", false } },
	{ "BAD_SUBSCRIPTION_GROUP_ID",
	  { "BAD_SUBSCRIPTION_GROUP_ID", "Braze does not know one of the subscription groups this user was to join.",
	    "Check the subscription group IDs on the destination (Braze → Audience → Subscriptions) and fix the wrong one; then retry.", false } },
	{ "BAD_SUBSCRIPTION_GROUP_STATE",
	  { "BAD_SUBSCRIPTION_GROUP_STATE", "Braze refused the subscription change for this user.",
	    "Check that the subscription group belongs to this Braze workspace and channel.", false } },
	{ "BAD_SUBSCRIPTION_GROUP",
	  { "BAD_SUBSCRIPTION_GROUP", "Braze could not read the subscription groups sent for this user.",
	    "Check the destination's subscription group mappings.", false } },
	{ "BAD_EMAIL_SUBSCRIPTION_STATE",
	  { "BAD_EMAIL_SUBSCRIPTION_STATE", "The email subscription value is not one Braze accepts (opted_in, subscribed or unsubscribed).",
	    "Fix the values of the property mapped to email_subscribe.", false } },
	{ "BAD_PUSH_SUBSCRIPTION_STATE",
	  { "BAD_PUSH_SUBSCRIPTION_STATE", "The push subscription value is not one Braze accepts (opted_in, subscribed or unsubscribed).",
	    "Fix the values of the property mapped to push_subscribe.", false } },
	{ "INVALID_ATTRIBUTE_EMAIL_SUBSCRIPTION_INFO",
	  { "INVALID_ATTRIBUTE_EMAIL_SUBSCRIPTION_INFO", "Braze refused the email subscription information of this user.",
	    "Fix the values of the properties mapped to email subscription fields.", false } },
	{ "BAD_LOCATION_UPDATE",
	  { "BAD_LOCATION_UPDATE", "Braze refused the location sent for this user.",
	    "Fix the values of the property mapped to the location field.", false } },
	{ "BAD_DEVICE_ID", { "BAD_DEVICE_ID", "Braze refused a device ID of this user.", "Fix the device values in the source.", false } },
	{ "BAD_PUSH_TOKEN", { "BAD_PUSH_TOKEN", "Braze refused a push token of this user.", "Fix the push token values in the source.", false } },
	{ "is required",
	  { "missing identifier", "Braze got no user ID for this record.",
	    "Give the record a value for the property mapped to the Braze user ID (external_id).", false } },
	{ "unreadable",
	  { "unreadable row", "joey could not read this row of the source, so nothing was sent for it.",
	    "Fix the row in the source (its place is in the message); the next run reads it again.", false } },
	/* run-level errors (the run stopped): braze.c's fatal messages */
	{ "rejected the API key",
	  { "key refused", "Braze did not accept the API key, so the run stopped.",
	    "An admin must fix the key of the Braze app (Braze apps page) and test the connection; the records not sent go with the next run.", false } },
	{ "access denied",
	  { "permission missing", "The API key lacks a permission joey needs, so the run stopped.",
	    "An admin must give the key the permissions users.track, users.delete, users.export.ids and subscription.status.set in Braze, then run again.", false } },
	{ "does not know this endpoint",
	  { "wrong address", "The Braze address of the app is wrong, so the run stopped.",
	    "An admin must fix the REST endpoint of the Braze app (it looks like https://rest.iad-01.braze.com), then run again.", false } },
	{ "Braze unreachable",
	  { "Braze unreachable", "joey could not reach Braze at all, so the run stopped; nothing was lost.",
	    "Check the network of this server (firewall, proxy, DNS); the records not sent go with the next run.", true } },
	{ "run interrupted",
	  { "interrupted", "The run was stopped (joey was shutting down); what Braze confirmed is kept.",
	    "Nothing to fix: the next run sends the rest.", true } },
	{ "gave up after",
	  { "Braze unavailable", "Braze did not answer in time, or answered with a server error, several times in a row.",
	    "Nothing to fix on your side: retry now or let the next run send it again.", true } },
	{ "could not reach",
	  { "Braze unreachable", "joey could not reach Braze (network or address problem).",
	    "Check the network of this server; then retry.", true } },
	{ "no response",
	  { "no answer", "Braze did not answer.", "Retry now or let the next run send it again.", true } },
	{ "HTTP 400",
	  { "HTTP 400", "Braze refused the data sent for this user as invalid.",
	    "Look at the values this record sends (a field of the wrong type, a value Braze does not accept) and fix them in the source or in the mapping.",
	    false } },
	{ "HTTP 413",
	  { "HTTP 413", "The data of this user is too large for Braze.", "Send fewer or shorter fields for this record.", false } },
	{ "HTTP 401",
	  { "HTTP 401", "Braze did not accept the API key.", "An admin must fix the key of the Braze app (Apps page), then retry.", false } },
	{ "HTTP 403",
	  { "HTTP 403", "The API key lacks a permission joey needs.", "An admin must give the key the permissions joey needs (Apps page shows them), then retry.", false } },
	{ "HTTP 404",
	  { "HTTP 404", "The Braze address is wrong.", "An admin must fix the REST endpoint of the Braze app, then retry.", false } },
	{ "HTTP 429",
	  { "HTTP 429", "Braze asked joey to slow down (rate limit) for too long.", "Retry later; runs slow down by themselves.", true } },
	{ "HTTP 5",
	  { "HTTP 5xx", "Braze had a server error.", "Nothing to fix on your side: retry now or let the next run send it again.", true } },
	{ "HTTP 4",
	  { "HTTP 4xx", "Braze refused the request for this user.", "Read the technical detail; fix the data it names, then retry.", false } },
	{ "rejected by Braze",
	  { "rejected", "Braze refused this user without saying why.", "Check the values this record sends; fix them in the source.", false } },
};

static const struct explanation generic = {
	"unknown", "The user could not be sent to Braze.",
	"Read the technical detail. A retry may help when the cause was temporary.", true
};

const struct explanation *explain_error(const char *error)
{
	if (!error || !*error)
		return &generic;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		size_t n = strlen(rules[i].needle);
		for (const char *p = error; *p; p++)
			if (!strncasecmp(p, rules[i].needle, n))
				return &rules[i].e;
	}
	return &generic;
}

json_t *explain_json(const struct explanation *e)
{
	return json_pack("{s:s,s:s,s:s,s:b}", "code", e->code, "title", e->title, "action", e->action, "retry", e->retry);
}
