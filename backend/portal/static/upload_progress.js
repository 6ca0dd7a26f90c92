// Shows how far the upload of a form marked data-upload-progress="<id of a <progress>>" has got.
// htmx 4 sends its requests with fetch(), which reports no upload progress (its XHR events are
// gone), so for such a form this hands htmx, through the request's ctx.fetch, a fetch made with
// XMLHttpRequest, whose upload events move the bar; htmx then swaps the answer in as usual.
// Without JavaScript the form posts as a plain form, and the bar stays hidden.
document.addEventListener("htmx:config:request", (event) => {
  const ctx = event.detail.ctx;
  const form = ctx.request.form;
  const bar = form && form.dataset.uploadProgress ? document.getElementById(form.dataset.uploadProgress) : null;
  if (bar) {
    ctx.fetch = (url, init) => fetchWithUploadProgress(url, init, form, bar);
  }
});

function fetchWithUploadProgress(url, init, form, bar) {
  const box = bar.parentElement;
  const label = box.querySelector("label");
  const submit = form.querySelector("[type=submit]");
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(init.method, url);
    for (const [name, value] of Object.entries(init.headers || {})) {
      request.setRequestHeader(name, value);
    }
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) {
        bar.max = progress.total;
        bar.value = progress.loaded;
      }
    });
    // The file is sent; the server is reading it: an indeterminate bar, and the label says so.
    request.upload.addEventListener("load", () => {
      bar.removeAttribute("value");
      label.textContent = label.dataset.processingText;
    });
    request.addEventListener("load", () => {
      // A Response may carry no body with these statuses.
      const body = [204, 205, 304].includes(request.status) ? null : request.responseText;
      resolve(new Response(body, { status: request.status, statusText: request.statusText,
                                   headers: responseHeaders(request) }));
    });
    const fail = (error) => {
      box.hidden = true;
      submit.disabled = false;
      reject(error);
    };
    request.addEventListener("error", () => fail(new TypeError("the upload failed")));
    request.addEventListener("abort", () => fail(new DOMException("the upload was stopped", "AbortError")));
    request.addEventListener("timeout", () => fail(new DOMException("the upload timed out", "TimeoutError")));
    if (init.signal) {
      init.signal.addEventListener("abort", () => request.abort());
    }
    bar.value = 0;
    box.hidden = false;
    submit.disabled = true;
    request.send(init.body);
  });
}

function responseHeaders(request) {
  const headers = new Headers();
  for (const line of request.getAllResponseHeaders().trim().split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
  }
  return headers;
}
