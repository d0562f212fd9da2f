// The strategy list's drag-to-reorder, completed: django-admin-sortable2 posts the moved rows
// and leaves the page as it was. When the answer comes back, the priority column and the drag
// handles take the positions the server stored (it renumbers the scenario 1..n), and a message
// says the priorities were saved, or that they were not (then the page is reloaded so it never
// shows an order that is not the stored one).
"use strict";
(function () {
  const panel = document.getElementById("atom-reorder");
  const configElem = document.getElementById("admin_sortable2_config");
  if (!panel || !configElem || !window.fetch) {
    return;
  }
  let updatePath;
  try {
    updatePath = new URL(JSON.parse(configElem.textContent).update_url, window.location.href).pathname;
  } catch (error) {
    return;
  }

  function say(text, level) {
    let list = document.querySelector("ul.messagelist");
    if (!list) {
      list = document.createElement("ul");
      list.className = "messagelist";
      const content = document.getElementById("content");
      content.parentNode.insertBefore(list, content);
    }
    list.querySelectorAll("li.atom-reorder-message").forEach((li) => li.remove());
    const item = document.createElement("li");
    item.className = `${level} atom-reorder-message`;
    item.setAttribute("role", "status");
    item.textContent = text;
    list.appendChild(item);
  }

  function renumber(positions) {
    document.querySelectorAll("#result_list tbody tr").forEach((row) => {
      const handle = row.querySelector(".handle[pk]");
      if (!handle) {
        return;
      }
      const position = positions[handle.getAttribute("pk")];
      if (position === undefined) {
        return;
      }
      handle.setAttribute("order", String(position));
      const cell = row.querySelector("td.field-priority");
      if (cell) {
        cell.textContent = String(position);
      }
    });
  }

  const originalFetch = window.fetch.bind(window);
  window.fetch = async function (resource, options) {
    const response = await originalFetch(resource, options);
    let path = null;
    try {
      path = new URL(typeof resource === "string" ? resource : resource.url, window.location.href).pathname;
    } catch (error) {
      path = null;
    }
    if (path !== updatePath) {
      return response;
    }
    if (response.ok) {
      try {
        const body = await response.clone().json();
        renumber(body.positions || {});
        say(panel.dataset.saved, "success");
      } catch (error) {
        say(panel.dataset.failed, "error");
      }
    } else {
      const reason = await response.clone().text();
      say(`${panel.dataset.failed} ${reason}`.trim(), "error");
      window.setTimeout(() => window.location.reload(), 2500);
    }
    return response;
  };
})();
