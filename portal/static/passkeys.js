/*
 * Passkeys (WebAuthn): registering one on /account/second-factor and "use a passkey" on
 * /login/second-factor.  No inline script (strict CSP): a page loads this file and marks its form
 * with data-passkey="register" or data-passkey="login" and data-passkey-options-json: the
 * server's options (py_webauthn's options_to_json: binary values in base64url, and a challenge
 * that is single-use and lasts 5 minutes).
 *
 * On submit: ask the browser (navigator.credentials.create/get); put its answer, as JSON with
 * base64url values, into the form's hidden field "credential"; then submit the form for real.  The server checks
 * everything (docs/security.md, "Passkeys"); this file only carries bytes.
 */
"use strict";

(function () {
  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var raw = window.atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i += 1) {
      raw += String.fromCharCode(bytes[i]);
    }
    return window.btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      var copy = Object.assign({}, item);
      copy.id = toBytes(item.id);
      return copy;
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = withIds(json.excludeCredentials);
    return { publicKey: options };
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = withIds(json.allowCredentials);
    return { publicKey: options };
  }

  function credentialJson(credential) {
    var response = credential.response;
    var answer = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      answer.response.attestationObject = toText(response.attestationObject);
      if (typeof response.getTransports === "function") {
        answer.response.transports = response.getTransports();
      }
    } else {
      answer.response.authenticatorData = toText(response.authenticatorData);
      answer.response.signature = toText(response.signature);
      answer.response.userHandle = toText(response.userHandle);
    }
    return JSON.stringify(answer);
  }

  /*
   * The page carries each notice, with its Troubleshooting Guide code, hidden
   * (data-passkey-notice="unsupported" | "cancelled" | "failed"); show that one.
   */
  function say(form, kind) {
    var notices = form.querySelectorAll("[data-passkey-notice]");
    for (var i = 0; i < notices.length; i += 1) {
      notices[i].hidden = notices[i].getAttribute("data-passkey-notice") !== kind;
    }
  }

  function busy(form, on) {
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].disabled = on;
    }
  }

  function start(form) {
    var kind = form.getAttribute("data-passkey");
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-passkey-ready") === "yes") {
        return; // the browser answered: this submit goes to the server
      }
      event.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        say(form, "unsupported");
        return;
      }
      var json;
      try {
        json = JSON.parse(form.getAttribute("data-passkey-options-json"));
      } catch (error) {
        say(form, "failed");
        return;
      }
      busy(form, true);
      Promise.resolve(json)
        .then(function (json) {
          if (kind === "register") {
            return navigator.credentials.create(creationOptions(json));
          }
          return navigator.credentials.get(requestOptions(json));
        })
        .then(function (credential) {
          if (!credential) {
            throw Object.assign(new Error(""), { name: "NotAllowedError" });
          }
          form.querySelector("input[name=credential]").value = credentialJson(credential);
          form.setAttribute("data-passkey-ready", "yes");
          busy(form, false);
          form.requestSubmit();
        })
        .catch(function (error) {
          busy(form, false);
          if (error && error.name === "NotAllowedError") {
            say(form, "cancelled");
          } else if (error && (error.name === "SecurityError" || error.name === "NotSupportedError")) {
            say(form, "unsupported");
          } else {
            say(form, "failed");
          }
        });
    });
  }

  function init() {
    var forms = document.querySelectorAll("form[data-passkey]");
    for (var i = 0; i < forms.length; i += 1) {
      start(forms[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
