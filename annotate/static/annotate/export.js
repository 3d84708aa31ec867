// The staff export page: the form asks the export API. A small export comes back as the zip
// itself and is saved at once; a large one comes back as 202 and an export job, whose JSON is
// polled every second (progress bar) until its file is ready, then downloaded. Without
// JavaScript the form still works: the zip, or the job's JSON with its URL.
(function () {
  "use strict";
  const form = document.getElementById("export-form");
  if (!form) return;
  const box = document.getElementById("export-status");
  const bar = document.getElementById("export-progress");
  const message = document.getElementById("export-message");
  const button = form.querySelector("button[type=submit]");
  const POLL_MS = 1000;

  function say(text, isError) {
    box.hidden = false;
    message.textContent = text;
    message.className = isError ? "error" : "muted";
  }

  function fileName(response) {
    const header = response.headers.get("Content-Disposition") || "";
    const found = /filename="([^"]+)"/.exec(header);
    return found ? found[1] : "export.zip";
  }

  function save(blob, name) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  }

  async function detail(response) {
    try {
      const body = await response.json();
      return body.detail || JSON.stringify(body);
    } catch (e) {
      return response.status + " " + response.statusText;
    }
  }

  async function follow(job) {
    while (true) {
      bar.value = job.progress;
      const rows = job.rows_total
        ? job.rows_done.toLocaleString() + " of about " + job.rows_total.toLocaleString() + " rows"
        : "";
      if (job.status === "succeeded" && job.download_url) {
        bar.value = 1;
        say("Ready: " + job.file_name + " (" + rows + "). Downloading…");
        window.location.assign(job.download_url);
        return;
      }
      if (job.status === "failed") {
        say("The export failed: " + job.error, true);
        return;
      }
      say("Building the export in the background (" + job.status + (rows ? ", " + rows : "") + ")…");
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const response = await fetch(job.url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        say("Could not follow the export: " + (await detail(response)), true);
        return;
      }
      job = await response.json();
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = form.action + "?" + new URLSearchParams(new FormData(form)).toString();
    button.disabled = true;
    bar.removeAttribute("value"); // indeterminate until the first figures
    say("Preparing the export…");
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.status === 200) {
        save(await response.blob(), fileName(response));
        bar.value = 1;
        say("Downloaded.");
      } else if (response.status === 202) {
        await follow(await response.json());
      } else {
        say("The export was refused: " + (await detail(response)), true);
      }
    } catch (e) {
      say("The export failed: " + e, true);
    } finally {
      button.disabled = false;
    }
  });
})();
