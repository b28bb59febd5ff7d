// The Station module.
