#!/usr/bin/env node
import { runBinary } from '../dist/cli/main.js';

runBinary(process.argv);
