import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { AdminTeamsService } from '../../modules/admin/admin-teams.service';
import { CreateTeamDto, UpdateTeamDto } from '../../modules/admin/dto/team-fields.dto';
import { AdminTokenGuard } from '../guards/admin-token.guard';
import { AdminSurface } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';

@Public()
@AdminSurface()
@UseGuards(AdminTokenGuard)
@Controller('admin/teams')
export class AdminTeamsController {
  constructor(private readonly teams: AdminTeamsService) {}

  @Post()
  create(@Body() dto: CreateTeamDto) {
    return this.teams.create(dto);
  }

  @Get()
  list(@Query('limit') limit: unknown, @Query('cursor') cursor: unknown) {
    return this.teams.list(limit, cursor);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.teams.get(id);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() dto: UpdateTeamDto) {
    return this.teams.update(id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id') id: string) {
    return this.teams.remove(id);
  }

  @Get(':id/usage')
  usage(@Param('id') id: string, @Query('from') from: unknown, @Query('to') to: unknown) {
    return this.teams.dailyUsage(id, from, to);
  }
}
