"""Everything that imports temporalio: workflow classes, activities, client, worker, dev server."""
